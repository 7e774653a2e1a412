//! What `run`'s alerts cover: which packets each alert holds (run.csv's
//! `alert_id`), what kind and first reason it opened with (the EVE file),
//! and from that the benign alerts, the benign packets inside alerts and,
//! per attack capture, the alerts that hold it.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};

use super::capture::{Capture, Label};
use super::mixture::Mixture;

/// An alert as it ended: its kind and the feature of its first reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    pub kind: String,
    pub first_reason: String,
}

/// The last alert event of each alert in an EVE file, by alert id.
pub fn read_eve(path: &Path) -> Result<HashMap<u64, Opened>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut last = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not JSON", path.display(), i + 1))?;
        // The last event of an alert (closed) has its final kind.
        if v["event_type"] != "alert" {
            continue;
        }
        let id = v["ml"]["alert_id"]
            .as_u64()
            .with_context(|| format!("{} line {}: no ml.alert_id", path.display(), i + 1))?;
        last.insert(
            id,
            Opened {
                kind: v["ml"]["kind"].as_str().unwrap_or_default().to_string(),
                first_reason: v["ml"]["reasons"][0]["feature"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            },
        );
    }
    Ok(last)
}

/// The alert figures of the test part (`alert_of[i]`: packet `i`'s alert).
pub fn markdown(
    captures: &[Capture],
    mixture: &Mixture,
    alert_of: &[Option<u64>],
    opened: &HashMap<u64, Opened>,
) -> String {
    // Per alert: (benign packets, attack packets), over the test part.
    let mut content: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    let mut per_attack: BTreeMap<usize, BTreeMap<u64, usize>> = BTreeMap::new();
    let (mut benign_test, mut benign_inside) = (0usize, 0usize);
    let test = mixture.slots.iter().zip(alert_of).skip(mixture.n_train);
    for (slot, alert) in test {
        let c = slot.capture as usize;
        let attack = captures[c].label == Label::Attack;
        if !attack {
            benign_test += 1;
        }
        let Some(id) = alert.filter(|&id| id != 0) else {
            continue;
        };
        let e = content.entry(id).or_default();
        if attack {
            e.1 += 1;
            *per_attack.entry(c).or_default().entry(id).or_default() += 1;
        } else {
            e.0 += 1;
            benign_inside += 1;
        }
    }
    let benign_alerts = content.values().filter(|(_, a)| *a == 0).count();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Alerts of `run` over the test part: {} ({} of them with benign packets only); benign test \
         packets inside alerts: {} of {} ({:.3} %).\n",
        content.len(),
        benign_alerts,
        benign_inside,
        benign_test,
        100.0 * benign_inside as f64 / benign_test.max(1) as f64
    );
    let _ = writeln!(
        s,
        "| attack capture | packets | inside alerts | alerts | largest alert: kind, first reason |\n|---|---:|---:|---:|---|"
    );
    for (c, capture) in captures.iter().enumerate() {
        if capture.label != Label::Attack {
            continue;
        }
        let packets = (mixture.n_train..mixture.slots.len())
            .filter(|&i| mixture.slots[i].capture as usize == c)
            .count();
        let alerts = per_attack.get(&c);
        let inside: usize = alerts.map_or(0, |a| a.values().sum());
        let largest = alerts
            .and_then(|a| {
                a.iter()
                    .max_by_key(|(id, n)| (**n, std::cmp::Reverse(**id)))
            })
            .and_then(|(id, _)| opened.get(id))
            .map_or("-".to_string(), |o| {
                format!("{}, {}", o.kind, o.first_reason)
            });
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} % | {} | {} |",
            capture.name,
            packets,
            100.0 * inside as f64 / packets.max(1) as f64,
            alerts.map_or(0, |a| a.len()),
            largest
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::capture::tests::synthetic;
    use super::super::mixture::Timeline;
    use super::*;

    #[test]
    fn alerts_are_counted_by_what_they_hold() {
        let captures = vec![
            synthetic("a", Label::Benign, 1, 20, 100_000_000),
            synthetic("x", Label::Attack, 9, 50, 1_000_000),
        ];
        let timeline = Timeline {
            length_ns: 20_000_000_000,
            split_ns: 12_000_000_000,
            start_window_ns: 1_000_000_000,
            ..Timeline::default()
        };
        let m = Mixture::build(&captures, &timeline, 1);
        // Every attack packet in alert 7; the first benign test packet in
        // alert 8, alone.
        let mut first_benign = true;
        let alert_of: Vec<Option<u64>> = (0..m.slots.len())
            .map(|i| {
                if i < m.n_train {
                    None
                } else if m.label(&captures, i) == Label::Attack {
                    Some(7)
                } else if first_benign {
                    first_benign = false;
                    Some(8)
                } else {
                    None
                }
            })
            .collect();
        let opened = HashMap::from([(
            7,
            Opened {
                kind: "scan".into(),
                first_reason: "src_ports".into(),
            },
        )]);
        let table = markdown(&captures, &m, &alert_of, &opened);
        assert!(
            table.contains("test part: 2 (1 of them with benign packets only)"),
            "{table}"
        );
        assert!(
            table.contains("| x | 50 | 100.00 % | 1 | scan, src_ports |"),
            "{table}"
        );
    }

    #[test]
    fn eve_lines_give_the_opened_alerts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("eve.json");
        std::fs::write(
            &path,
            "{\"event_type\":\"stats\",\"stats\":{}}\n\
             {\"event_type\":\"alert\",\"ml\":{\"alert_id\":3,\"state\":\"opened\",\"kind\":\"flood towards a victim\",\"reasons\":[{\"feature\":\"dst_new_flows_1s\"}]}}\n\
             {\"event_type\":\"alert\",\"ml\":{\"alert_id\":3,\"state\":\"closed\",\"kind\":\"x\",\"reasons\":[{\"feature\":\"src_ports\"}]}}\n",
        )
        .unwrap();
        let o = read_eve(&path).unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(o[&3].kind, "x", "the closing event wins");
        std::fs::write(&path, "not json\n").unwrap();
        assert!(read_eve(&path).is_err());
    }
}
