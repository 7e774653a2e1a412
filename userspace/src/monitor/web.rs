//! `run --web ADDR`: a live dashboard served by the monitor itself. One
//! page (script and style embedded in the binary, nothing fetched from
//! elsewhere) that opens a server-sent event stream; the monitor publishes
//! a JSON snapshot once a second and every open page gets it. Read-only;
//! on an address other than loopback every request needs the token printed
//! at start.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use rand::Rng;

const PAGE: &str = include_str!("web_page.html");
/// A comment line keeps idle streams open through proxies.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// The latest snapshot and its sequence number, shared with the streams.
#[derive(Default)]
struct Latest {
    state: Mutex<(u64, String)>,
    changed: Condvar,
    closed: Mutex<bool>,
}

pub struct Web {
    latest: Arc<Latest>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    /// Where the page is, with its token when one is needed.
    pub url: String,
}

impl Web {
    pub fn serve(address: SocketAddr) -> Result<Self> {
        let token = (!address.ip().is_loopback()).then(|| {
            let mut rng = rand::thread_rng();
            (0..24)
                .map(|_| char::from(b"abcdefghijkmnpqrstuvwxyz23456789"[rng.gen_range(0..32)]))
                .collect::<String>()
        });
        let server = Arc::new(
            tiny_http::Server::http(address)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("cannot serve the dashboard on {address}"))?,
        );
        let latest = Arc::new(Latest::default());
        // The bound address (port 0 asks for any free one).
        let address = server.server_addr().to_ip().unwrap_or(address);
        let url = match &token {
            Some(t) => format!("http://{address}/?token={t}"),
            None => format!("http://{address}/"),
        };
        let thread = {
            let (server, latest) = (Arc::clone(&server), Arc::clone(&latest));
            std::thread::Builder::new()
                .name("web".into())
                .spawn(move || answer(&server, &latest, token.as_deref()))
                .context("cannot start the dashboard thread")?
        };
        Ok(Web {
            latest,
            server,
            thread: Some(thread),
            url,
        })
    }

    /// Hands `snapshot` (a JSON object) to every open page.
    pub fn publish(&self, snapshot: String) {
        let mut state = self.latest.state.lock().expect("not poisoned");
        state.0 += 1;
        state.1 = snapshot;
        self.latest.changed.notify_all();
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        *self.latest.closed.lock().expect("not poisoned") = true;
        self.latest.changed.notify_all();
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether `url` carries `token` as its `token` query parameter.
fn authorized(url: &str, token: Option<&str>) -> bool {
    let Some(token) = token else { return true };
    url.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|pair| pair.strip_prefix("token=") == Some(token))
    })
}

fn header(text: &str) -> tiny_http::Header {
    text.parse().expect("a valid header")
}

fn answer(server: &tiny_http::Server, latest: &Arc<Latest>, token: Option<&str>) {
    for request in server.incoming_requests() {
        let url = request.url().to_string();
        let path = url.split('?').next().unwrap_or("");
        if !authorized(&url, token) {
            let _ = request.respond(
                tiny_http::Response::from_string("ml-sniffing: the dashboard needs its token\n")
                    .with_status_code(403),
            );
            continue;
        }
        match path {
            "/" => {
                // The page comes with the latest snapshot, shown at once.
                let snapshot = latest.state.lock().expect("not poisoned").1.clone();
                let snapshot = if snapshot.is_empty() {
                    "null".to_string()
                } else {
                    // Inside a script element: `</` must not end it.
                    snapshot.replace("</", "<\\/")
                };
                let page = PAGE.replace("/*SNAPSHOT*/null", &snapshot);
                let _ = request.respond(
                    tiny_http::Response::from_string(page)
                        .with_header(header("Content-Type: text/html; charset=utf-8")),
                );
            }
            "/state.json" => {
                let body = latest.state.lock().expect("not poisoned").1.clone();
                let _ = request.respond(
                    tiny_http::Response::from_string(if body.is_empty() {
                        "{}".into()
                    } else {
                        body
                    })
                    .with_header(header("Content-Type: application/json")),
                );
            }
            "/events" => {
                // A stream lasts as long as its page: one thread each,
                // writing the response itself so that every event is
                // flushed as it comes (tiny_http would buffer chunks).
                let latest = Arc::clone(latest);
                let _ = std::thread::Builder::new()
                    .name("web-stream".into())
                    .spawn(move || stream(request.into_writer(), &latest));
            }
            _ => {
                let _ = request
                    .respond(tiny_http::Response::from_string("not found\n").with_status_code(404));
            }
        }
    }
}

/// Server-sent events: each new snapshot as one `data:` line, until the
/// page goes away or the monitor ends.
fn stream(mut out: Box<dyn Write + Send>, latest: &Latest) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
                Connection: close\r\n\r\n";
    if out
        .write_all(head.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        return;
    }
    let mut seen = 0;
    let mut state = latest.state.lock().expect("not poisoned");
    loop {
        if *latest.closed.lock().expect("not poisoned") {
            return;
        }
        let event = if state.0 != seen {
            seen = state.0;
            format!("data: {}\n\n", state.1)
        } else {
            let (next, timeout) = latest
                .changed
                .wait_timeout(state, KEEPALIVE)
                .expect("not poisoned");
            state = next;
            if !timeout.timed_out() {
                continue;
            }
            ": keepalive\n\n".to_string()
        };
        drop(state);
        if out
            .write_all(event.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
        state = latest.state.lock().expect("not poisoned");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read};
    use std::net::TcpStream;

    fn get(address: SocketAddr, path: &str) -> TcpStream {
        let mut s = TcpStream::connect(address).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        s
    }

    #[test]
    fn tokens_are_checked_in_the_query() {
        assert!(authorized("/", None));
        assert!(authorized("/events?token=abc", Some("abc")));
        assert!(authorized("/?x=1&token=abc", Some("abc")));
        assert!(!authorized("/?token=abd", Some("abc")));
        assert!(!authorized("/", Some("abc")));
    }

    /// The page, the snapshot, and the event stream a page reads.
    #[test]
    fn pages_and_streams_get_each_snapshot() {
        let web = Web::serve("127.0.0.1:0".parse().unwrap()).unwrap();
        let address = web.server.server_addr().to_ip().unwrap();
        assert_eq!(web.url, format!("http://{address}/"));
        let mut page = String::new();
        get(address, "/").read_to_string(&mut page).ok();
        assert!(
            page.contains("text/html") && page.contains("EventSource"),
            "{page}"
        );
        assert!(page.contains("const initial = null;"), "no snapshot yet");
        let mut events = BufReader::new(get(address, "/events"));
        web.publish("{\"n\":1}".into());
        let mut line = String::new();
        while !line.starts_with("data:") {
            line.clear();
            events.read_line(&mut line).unwrap();
        }
        assert_eq!(line.trim_end(), "data: {\"n\":1}");
        web.publish("{\"n\":2}".into());
        line.clear();
        while !line.starts_with("data:") {
            line.clear();
            events.read_line(&mut line).unwrap();
        }
        assert_eq!(line.trim_end(), "data: {\"n\":2}");
        let mut state = String::new();
        get(address, "/state.json").read_to_string(&mut state).ok();
        assert!(state.ends_with("{\"n\":2}"), "{state}");
        web.publish(r#"{"s":"</script>"}"#.into());
        let mut page = String::new();
        get(address, "/").read_to_string(&mut page).ok();
        assert!(
            page.contains(r#"const initial = {"s":"<\/script>"};"#),
            "{page}"
        );
        drop(web);
    }
}
