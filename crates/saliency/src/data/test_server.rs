//! A one-thread HTTP/1.1 server on the loopback address for the download tests: it serves fixed
//! bodies, cut-short bodies and 404s, and stops by itself after a bounded number of requests or
//! 30 seconds.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the test server answers for one path.
#[derive(Clone)]
pub enum Reply {
    /// 200 with this body.
    Body(Vec<u8>),
    /// 200 announcing `claimed` bytes, then only `body` and a closed connection.
    CutShort { body: Vec<u8>, claimed: usize },
    /// 404.
    NotFound,
}

/// A one-thread HTTP/1.1 server on 127.0.0.1 that answers at most `max_requests` requests,
/// then (or after 30 s, or when `finish` is called) stops by itself.
pub struct Server {
    /// `http://127.0.0.1:PORT/files/`.
    pub base: String,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Server {
    pub fn start(routes: HashMap<&'static str, Reply>, max_requests: usize) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}/files/", listener.local_addr().unwrap());
        let (hits, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (h, s) = (hits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while h.load(Ordering::SeqCst) < max_requests
                && !s.load(Ordering::SeqCst)
                && Instant::now() < deadline
            {
                match listener.accept() {
                    Ok((stream, _)) => {
                        h.fetch_add(1, Ordering::SeqCst);
                        let _ = answer(stream, &routes);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server {
            base,
            hits,
            stop,
            thread,
        }
    }

    /// Stops the server and returns how many requests it answered.
    pub fn finish(self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap();
        self.hits.load(Ordering::SeqCst)
    }
}

fn answer(
    stream: std::net::TcpStream,
    routes: &HashMap<&'static str, Reply>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let mut reader = std::io::BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Drain the headers up to the blank line.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    let name = path.strip_prefix("/files/").unwrap_or("");
    let mut out = stream;
    let head = |status: &str, len: usize| {
        format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
    };
    match routes.get(name).unwrap_or(&Reply::NotFound) {
        Reply::Body(b) => {
            out.write_all(head("200 OK", b.len()).as_bytes())?;
            out.write_all(b)?;
        }
        Reply::CutShort { body, claimed } => {
            out.write_all(head("200 OK", *claimed).as_bytes())?;
            out.write_all(body)?;
        }
        Reply::NotFound => out.write_all(head("404 Not Found", 0).as_bytes())?,
    }
    out.flush()
}
