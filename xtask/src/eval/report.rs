//! The figures of one evaluation and their Markdown tables.

use std::fmt::Write;

use super::capture::{Capture, Label};
use super::metrics::{average_precision, count_above, roc_auc, share, threshold_at};
use super::mixture::Mixture;

/// One attack capture's figures.
#[derive(Debug, PartialEq)]
pub struct AttackRow {
    pub name: String,
    pub packets: usize,
    pub duration_s: f64,
    /// Of its packets: above the 1 % threshold, reported by `run`.
    pub caught: usize,
    pub reported: usize,
}

/// One benign capture's false alarms in the test part.
#[derive(Debug, PartialEq)]
pub struct BenignRow {
    pub name: String,
    pub test_packets: usize,
    pub above: usize,
}

#[derive(Debug)]
pub struct Figures {
    pub train: usize,
    pub test: usize,
    pub benign_test: usize,
    pub attack: usize,
    pub auc: f64,
    pub ap: f64,
    /// Attack packets above the threshold of 1 % and 0.1 % false alarms,
    /// and the benign test packets above it.
    pub caught_1: usize,
    pub false_1: usize,
    pub caught_01: usize,
    pub false_01: usize,
    pub attacks: Vec<AttackRow>,
    /// Every benign capture with test packets, worst first.
    pub benign: Vec<BenignRow>,
    /// Test packets `run` reported.
    pub run_benign: usize,
    pub run_attack: usize,
    /// Training packets `run` reported (its warm-up window is scored too).
    pub run_train: usize,
}

/// The figures of the test part: `suspicion[i]` is slot `i`'s negated
/// `anomaly_score` from `predict`, `reported[i]` whether `run` reported it.
pub fn evaluate(
    captures: &[Capture],
    mixture: &Mixture,
    suspicion: &[f64],
    reported: &[bool],
) -> Figures {
    let n_train = mixture.n_train;
    let mut benign_scores = Vec::new();
    let mut attack_scores = Vec::new();
    let mut by_capture: Vec<Vec<(f64, bool)>> = vec![Vec::new(); captures.len()];
    for (i, slot) in mixture.slots.iter().enumerate().skip(n_train) {
        let c = slot.capture as usize;
        by_capture[c].push((suspicion[i], reported[i]));
        match captures[c].label {
            Label::Benign => benign_scores.push(suspicion[i]),
            Label::Attack => attack_scores.push(suspicion[i]),
        }
    }
    let t1 = threshold_at(&benign_scores, 0.01);
    let t01 = threshold_at(&benign_scores, 0.001);
    let mut attacks = Vec::new();
    let mut benign = Vec::new();
    let (mut run_benign, mut run_attack) = (0, 0);
    for (capture, rows) in captures.iter().zip(&by_capture) {
        let reported = rows.iter().filter(|r| r.1).count();
        let above = rows.iter().filter(|r| r.0 > t1).count();
        match capture.label {
            Label::Attack => {
                run_attack += reported;
                attacks.push(AttackRow {
                    name: capture.name.clone(),
                    packets: rows.len(),
                    duration_s: capture.duration_ns() as f64 / 1e9,
                    caught: above,
                    reported,
                });
            }
            Label::Benign if !rows.is_empty() => {
                run_benign += reported;
                benign.push(BenignRow {
                    name: capture.name.clone(),
                    test_packets: rows.len(),
                    above,
                });
            }
            Label::Benign => {}
        }
    }
    benign.sort_by(|a, b| {
        share(b.above, b.test_packets)
            .total_cmp(&share(a.above, a.test_packets))
            .then(b.above.cmp(&a.above))
            .then(a.name.cmp(&b.name))
    });
    Figures {
        train: n_train,
        test: mixture.slots.len() - n_train,
        benign_test: benign_scores.len(),
        attack: attack_scores.len(),
        auc: roc_auc(&attack_scores, &benign_scores),
        ap: average_precision(&attack_scores, &benign_scores),
        caught_1: count_above(&attack_scores, t1),
        false_1: count_above(&benign_scores, t1),
        caught_01: count_above(&attack_scores, t01),
        false_01: count_above(&benign_scores, t01),
        attacks,
        benign,
        run_benign,
        run_attack,
        run_train: reported[..n_train].iter().filter(|r| **r).count(),
    }
}

fn pct(part: usize, whole: usize) -> String {
    format!("{:.2} %", 100.0 * share(part, whole))
}

/// The tables, ready to paste into DETECTION.md.
pub fn markdown(f: &Figures, seed: u64) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "#### Seed {seed}\n");
    let _ = writeln!(
        w,
        "| part | packets | benign | attack |\n|---|---:|---:|---:|"
    );
    let _ = writeln!(w, "| train | {} | {} | 0 |", f.train, f.train);
    let _ = writeln!(
        w,
        "| test | {} | {} | {} |",
        f.test, f.benign_test, f.attack
    );
    let _ = writeln!(
        w,
        "\nScores (`detect` on train.pcap, `predict` on mix.pcap; test packets):\n"
    );
    let _ = writeln!(w, "| metric | value |\n|---|---:|");
    let _ = writeln!(w, "| ROC AUC | {:.3} |", f.auc);
    let _ = writeln!(w, "| average precision | {:.3} |", f.ap);
    let _ = writeln!(
        w,
        "| attack packets caught at 1 % false alarms | {} (benign above: {}) |",
        pct(f.caught_1, f.attack),
        pct(f.false_1, f.benign_test)
    );
    let _ = writeln!(
        w,
        "| attack packets caught at 0.1 % false alarms | {} (benign above: {}) |",
        pct(f.caught_01, f.attack),
        pct(f.false_01, f.benign_test)
    );
    let _ = writeln!(
        w,
        "\n`run --read mix.pcap --warmup {}` reported {} of the benign test packets and {} of the attack packets ({} of the training packets).\n",
        f.train,
        pct(f.run_benign, f.benign_test),
        pct(f.run_attack, f.attack),
        pct(f.run_train, f.train)
    );
    let _ = writeln!(
        w,
        "| attack capture | packets | duration s | caught at 1 % false alarms | reported by `run` |\n|---|---:|---:|---:|---:|"
    );
    for a in &f.attacks {
        let _ = writeln!(
            w,
            "| {} | {} | {:.1} | {} | {} |",
            a.name,
            a.packets,
            a.duration_s,
            pct(a.caught, a.packets),
            pct(a.reported, a.packets)
        );
    }
    let _ = writeln!(
        w,
        "\nWhere the false alarms at the 1 % threshold come from (the 10 benign captures with the largest share of their test packets above it):\n"
    );
    let _ = writeln!(
        w,
        "| benign capture | test packets | above the threshold | share of all false alarms |\n|---|---:|---:|---:|"
    );
    for b in f.benign.iter().take(10) {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} |",
            b.name,
            b.test_packets,
            pct(b.above, b.test_packets),
            pct(b.above, f.false_1)
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
    fn figures_of_a_perfect_detector() {
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
        let attack: Vec<bool> = (0..m.slots.len())
            .map(|i| m.label(&captures, i) == Label::Attack)
            .collect();
        let suspicion: Vec<f64> = attack.iter().map(|&a| if a { 1.0 } else { 0.0 }).collect();
        let f = evaluate(&captures, &m, &suspicion, &attack);
        assert_eq!(f.attack, 50);
        assert_eq!(f.train + f.test, m.slots.len());
        assert_eq!(f.benign_test + f.attack, f.test);
        assert_eq!((f.auc, f.ap), (1.0, 1.0));
        assert_eq!((f.caught_1, f.false_1), (50, 0));
        assert_eq!(f.run_attack, 50);
        assert_eq!((f.run_benign, f.run_train), (0, 0));
        assert_eq!(
            f.attacks,
            [AttackRow {
                name: "x".into(),
                packets: 50,
                duration_s: 0.049,
                caught: 50,
                reported: 50
            }]
        );
        assert_eq!(f.benign.len(), 1);
        let table = markdown(&f, 1);
        assert!(table.contains("| ROC AUC | 1.000 |"), "{table}");
        assert!(
            table.contains("| x | 50 | 0.0 | 100.00 % | 100.00 % |"),
            "{table}"
        );
    }
}
