//! Shared helpers for the federation tests: the vendored reference files, test keys,
//! an independent XML reader (python3's `xml.etree`), a no-panic fuzzing helper, and
//! a tiny pod on loopback serving WebFinger and hCard documents.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use rand::{Rng, SeedableRng};
use rsa::{RsaPrivateKey, RsaPublicKey};

use super::signature::{private_key_from_pem, public_key_from_pem};
use crate::http_client::{ClientPolicy, HttpClient};

/// The text of a file under `tests/reference/`.
pub fn reference(path: &str) -> String {
    let full = format!("{}/tests/reference/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The text of a file under `tests/fixtures/`.
pub fn fixture(path: &str) -> String {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The 1024-bit key pair of the signature vectors.
pub fn vector_key_pair() -> (RsaPrivateKey, RsaPublicKey) {
    let private_key = private_key_from_pem(&reference("signature-vectors/author_private_key.pem")).unwrap();
    let public_key = public_key_from_pem(&reference("signature-vectors/author_public_key.pem")).unwrap();
    (private_key, public_key)
}

pub use crate::testing::{key_2048, other_key_2048};

/// Parses `xml` with python3's `xml.etree` and returns, for the root and each
/// descendant in document order, `(depth, tag, text)` with text stripped. Namespaced
/// tags come out as `{namespace}local`.
pub fn python_elements(xml: &str) -> Vec<(usize, String, String)> {
    let script = r#"
import sys, json, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
out = []
def walk(element, depth):
    out.append([depth, element.tag, (element.text or "").strip(), dict(element.attrib)])
    for child in element:
        walk(child, depth + 1)
walk(root, 0)
print(json.dumps(out))
"#;
    let output = run_python(script, xml);
    let rows: Vec<(usize, String, String, serde_json::Value)> = serde_json::from_str(&output).expect("python output");
    rows.into_iter()
        .map(|(depth, tag, text, _)| (depth, tag, text))
        .collect()
}

/// Runs a python3 script with `input` on stdin and returns its stdout.
pub fn run_python(script: &str, input: &str) -> String {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is installed");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Feeds `parse` every prefix of `input` (on character boundaries) and a few hundred
/// randomly mutated copies; the parser may refuse them but must not panic.
pub fn assert_no_panic_on_damaged_input<T>(input: &str, parse: impl Fn(&str) -> T) {
    for (index, _) in input.char_indices() {
        let _ = parse(&input[..index]);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x11fe_b0a7);
    let damage: &[u8] = b"<>&;\"'/=! \n#x:-_.a0\xc3\xa9";
    for _ in 0..300 {
        let mut bytes = input.as_bytes().to_vec();
        for _ in 0..rng.gen_range(1..6) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.gen_range(0..bytes.len());
            match rng.gen_range(0..3) {
                0 => bytes[at] = damage[rng.gen_range(0..damage.len())],
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, damage[rng.gen_range(0..damage.len())]),
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse(&text);
    }
}

// ---------------------------------------------------------------------------------
// A pod on loopback
// ---------------------------------------------------------------------------------

/// The guid of the person a [`LoopbackPod::with_person`] serves.
pub const GUID: &str = "7dba7ca01d64013485eb3131731751e9";

/// One canned answer of a [`LoopbackPod`].
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// How long the pod waits before answering.
    pub delay: Duration,
}

pub fn reply(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
    Reply {
        status,
        content_type,
        body: body.into(),
        delay: Duration::ZERO,
    }
}

/// One request as the pod saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub target: String,
    pub accept: String,
}

/// A pod on loopback (std `TcpListener`, one thread per connection) answering plain
/// HTTP by request target (path and query), else by path; TLS handshakes (an https
/// attempt) are counted and hung up on.
pub struct LoopbackPod {
    pub addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    pub tls_attempts: Arc<AtomicUsize>,
}

impl LoopbackPod {
    pub fn start() -> LoopbackPod {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let pod = LoopbackPod {
            addr: listener.local_addr().unwrap(),
            routes: Arc::default(),
            seen: Arc::default(),
            tls_attempts: Arc::default(),
        };
        let (routes, seen, tls) = (pod.routes.clone(), pod.seen.clone(), pod.tls_attempts.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (routes, seen, tls) = (routes.clone(), seen.clone(), tls.clone());
                thread::spawn(move || serve(stream, &routes, &seen, &tls));
            }
        });
        pod
    }

    /// A pod serving `user`'s WebFinger (the reference JRD, pointed at this pod) and
    /// `hcard` at `/hcard/users/GUID`.
    pub fn with_person(user: &str, hcard: String) -> LoopbackPod {
        let pod = LoopbackPod::start();
        pod.set(
            "/.well-known/webfinger",
            reply(200, "application/jrd+json", pod.jrd(user).to_string()),
        );
        pod.set(&format!("/hcard/users/{GUID}"), reply(200, "text/html", hcard));
        pod
    }

    pub fn set(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_string(), reply);
    }

    pub fn id(&self, user: &str) -> String {
        format!("{user}@{}", self.addr)
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The reference JRD, its subject and links pointed at this pod.
    pub fn jrd(&self, user: &str) -> Value {
        let mut jrd: Value = serde_json::from_str(&reference("diaspora-examples/webfinger.example.json")).unwrap();
        jrd["subject"] = json!(format!("acct:{}", self.id(user)));
        jrd["links"][0]["href"] = json!(format!("{}/hcard/users/{GUID}", self.base()));
        jrd["links"][1]["href"] = json!(format!("{}/", self.base()));
        jrd
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn webfinger_requests(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.target.starts_with("/.well-known/webfinger"))
            .count()
    }
}

fn serve(mut stream: TcpStream, routes: &Mutex<HashMap<String, Reply>>, seen: &Mutex<Vec<Seen>>, tls: &AtomicUsize) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Ok(n) = stream.read(&mut chunk) else { return };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf[0] == 0x16 {
            // A TLS ClientHello: this pod speaks plain HTTP only.
            tls.fetch_add(1, Ordering::SeqCst);
            return;
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let target = head.split(' ').nth(1).unwrap_or("/").to_string();
    let accept = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("accept").then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    seen.lock().unwrap().push(Seen {
        target: target.clone(),
        accept,
    });
    let path = target.split('?').next().unwrap_or("/");
    let routes = routes.lock().unwrap();
    let answer = routes
        .get(&target)
        .or_else(|| routes.get(path))
        .cloned()
        .unwrap_or_else(|| reply(404, "text/plain", "not found"));
    drop(routes);
    thread::sleep(answer.delay);
    let head = format!(
        "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        answer.status,
        answer.content_type,
        answer.body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&answer.body);
    let _ = stream.flush();
}

/// http and loopback allowed, as for tests on one machine.
pub fn loopback_client() -> HttpClient {
    HttpClient::new(ClientPolicy {
        allow_http: true,
        allow_private_addresses: true,
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        ..ClientPolicy::default()
    })
}
