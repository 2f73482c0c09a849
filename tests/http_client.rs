//! The outbound HTTP client against real sockets on loopback: tiny hand-written
//! HTTP/1.1 servers on `127.0.0.1:0`, one thread per connection.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use lifeboat::http_client::{user_agent, ClientPolicy, HttpClient};
use lifeboat::Error;

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Server {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// A server answering every request with what `respond` returns (raw bytes,
    /// written before the connection is closed).
    fn start(respond: impl Fn(&Seen) -> Vec<u8> + Send + Sync + 'static) -> Server {
        Server::on(TcpListener::bind("127.0.0.1:0").unwrap(), respond)
    }

    fn on(listener: TcpListener, respond: impl Fn(&Seen) -> Vec<u8> + Send + Sync + 'static) -> Server {
        listener.set_nonblocking(false).unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let respond = Arc::new(respond);
        {
            let connections = connections.clone();
            let requests = requests.clone();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let requests = requests.clone();
                    let respond = respond.clone();
                    thread::spawn(move || {
                        let Some(seen) = read_request(&mut stream) else {
                            return;
                        };
                        requests.lock().unwrap().push(seen.clone());
                        let _ = stream.write_all(&respond(&seen));
                        let _ = stream.flush();
                    });
                }
            });
        }
        Server {
            addr,
            connections,
            requests,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Seen> {
        self.requests.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Seen> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        method,
        path,
        headers,
        body,
    })
}

/// A complete response with `Content-Length` and `Connection: close`.
fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn redirect(status: &str, location: &str) -> Vec<u8> {
    response(status, &[("Location", location)], b"")
}

/// A bound listener that nobody serves: whether a client connected to it is told
/// by a non-blocking `accept` (a completed connection waits in the backlog).
fn silent_listener() -> TcpListener {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    listener
}

fn saw_no_connection(listener: &TcpListener) -> bool {
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => true,
        Err(e) => panic!("accept: {e}"),
        Ok(_) => false,
    }
}

/// A port on loopback where nothing listens (connections are refused).
fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn upstream_message(result: lifeboat::Result<lifeboat::http_client::Response>) -> String {
    match result {
        Err(Error::Upstream(msg)) => msg,
        other => panic!("expected an upstream error, got {other:?}"),
    }
}

/// http and private addresses both allowed: everything on loopback is reachable.
fn open_policy() -> ClientPolicy {
    ClientPolicy {
        allow_http: true,
        allow_private_addresses: true,
        user_agent: user_agent("https://pod.example"),
        ..ClientPolicy::default()
    }
}

/// http allowed, private addresses not, except exactly these socket addresses.
fn exempting(addrs: &[SocketAddr]) -> ClientPolicy {
    ClientPolicy {
        allow_http: true,
        allow_private_addresses: false,
        exempt_addresses: addrs.to_vec(),
        ..ClientPolicy::default()
    }
}

#[test]
fn default_policy_refuses_plain_http_without_connecting() {
    let listener = silent_listener();
    let port = listener.local_addr().unwrap().port();
    let client = HttpClient::new(ClientPolicy::default());
    let msg = upstream_message(client.get(&format!("http://127.0.0.1:{port}/x?token=s3cret"), "*/*"));
    assert!(msg.contains("http"), "{msg}");
    assert!(msg.contains(&format!("http://127.0.0.1:{port}")), "{msg}");
    assert!(!msg.contains("s3cret"), "the query is never echoed: {msg}");
    assert!(saw_no_connection(&listener));
}

#[test]
fn loopback_is_refused_without_connecting_and_not_cached() {
    let listener = silent_listener();
    let port = listener.local_addr().unwrap().port();
    let client = HttpClient::new(ClientPolicy {
        allow_http: true,
        ..ClientPolicy::default()
    });
    let url = format!("http://127.0.0.1:{port}/");
    let msg = upstream_message(client.get(&url, "*/*"));
    assert!(msg.contains("loopback"), "{msg}");
    assert!(saw_no_connection(&listener));
    // A policy refusal is not a network failure: asked again, the same answer.
    let again = upstream_message(client.get(&url, "*/*"));
    assert!(again.contains("loopback"), "{again}");
    assert!(!again.contains("recently unreachable"), "{again}");
    assert!(saw_no_connection(&listener));
}

#[test]
fn a_name_resolving_to_loopback_is_refused() {
    let listener = silent_listener();
    let port = listener.local_addr().unwrap().port();
    let client = HttpClient::new(ClientPolicy {
        allow_http: true,
        ..ClientPolicy::default()
    });
    let msg = upstream_message(client.get(&format!("http://localhost:{port}/"), "*/*"));
    assert!(msg.contains("not on a public address"), "{msg}");
    assert!(msg.contains(&format!("http://localhost:{port}")), "{msg}");
    assert!(saw_no_connection(&listener));
}

#[test]
fn ipv6_loopback_literal_is_refused() {
    let client = HttpClient::new(ClientPolicy {
        allow_http: true,
        ..ClientPolicy::default()
    });
    let msg = upstream_message(client.get("http://[::1]:9/", "*/*"));
    assert!(msg.contains("loopback"), "{msg}");
    let msg = upstream_message(client.get("http://[::ffff:127.0.0.1]:9/", "*/*"));
    assert!(msg.contains("loopback"), "{msg}");
}

#[test]
fn fetch_works_when_allowed_and_sends_the_user_agent() {
    let server = Server::start(|_| response("200 OK", &[("Content-Type", "application/json")], br#"{"ok":true}"#));
    let client = HttpClient::new(open_policy());
    let res = client
        .get(&server.url("/.well-known/nodeinfo?x=1"), "application/json")
        .unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(res.content_type.as_deref(), Some("application/json"));
    assert_eq!(res.body, br#"{"ok":true}"#);
    assert_eq!(res.final_url, server.url("/.well-known/nodeinfo?x=1"));
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, "/.well-known/nodeinfo?x=1");
    assert_eq!(
        seen[0].header("user-agent"),
        Some(format!("lifeboat/{} (+https://pod.example)", env!("CARGO_PKG_VERSION")).as_str())
    );
    assert_eq!(seen[0].header("accept"), Some("application/json"));
}

#[test]
fn post_sends_body_and_content_type_and_returns_error_statuses() {
    let server = Server::start(|seen| {
        if seen.path == "/missing" {
            response("404 Not Found", &[("Content-Type", "text/plain")], b"no such thing")
        } else {
            response("202 Accepted", &[], b"")
        }
    });
    let client = HttpClient::new(open_policy());
    let res = client
        .post(
            &server.url("/receive/public"),
            "application/magic-envelope+xml",
            b"<me:env/>",
        )
        .unwrap();
    assert_eq!(res.status, 202);
    assert_eq!(res.content_type, None);
    assert!(res.body.is_empty());
    let res = client.post(&server.url("/missing"), "text/plain", b"x").unwrap();
    assert_eq!(res.status, 404);
    assert_eq!(res.body, b"no such thing");
    let seen = server.requests();
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].body, b"<me:env/>");
    assert_eq!(seen[0].header("content-type"), Some("application/magic-envelope+xml"));
}

#[test]
fn large_bodies_both_ways_and_response_heads_up_to_the_limit_pass() {
    use lifeboat::http_client::{REQUEST_BUFFER_BYTES, RESPONSE_HEAD_BYTES};
    // A head just under the limit: the status line, the filler header, Content-Length
    // and Connection lines take less than 200 bytes.
    let filler = "a".repeat(RESPONSE_HEAD_BYTES - 200);
    let body = vec![b'b'; 5 * REQUEST_BUFFER_BYTES + 7];
    let server = Server::start(move |seen| match seen.path.as_str() {
        "/big-head" => response("200 OK", &[("X-Filler", &filler)], b"ok"),
        "/too-big-head" => response("200 OK", &[("X-Filler", &"a".repeat(RESPONSE_HEAD_BYTES))], b"ok"),
        _ => response("200 OK", &[], &seen.body),
    });
    let client = HttpClient::new(open_policy());
    assert_eq!(client.get(&server.url("/big-head"), "*/*").unwrap().body, b"ok");
    let msg = upstream_message(client.get(&server.url("/too-big-head"), "*/*"));
    assert!(
        msg.contains(&format!("response headers larger than {RESPONSE_HEAD_BYTES} bytes")),
        "{msg}"
    );
    let echoed = client
        .post(&server.url("/echo"), "application/octet-stream", &body)
        .unwrap();
    assert_eq!(echoed.body, body);
}

#[test]
fn redirects_are_followed_and_final_url_reported() {
    let server = Server::start(|seen| match seen.path.as_str() {
        "/start" => redirect("301 Moved Permanently", "/middle"),
        "/middle" => redirect("302 Found", "end?step=3"),
        "/end?step=3" => response("200 OK", &[("Content-Type", "text/plain")], b"arrived"),
        _ => response("500 Internal Server Error", &[], b""),
    });
    let client = HttpClient::new(exempting(&[server.addr]));
    let res = client.get(&server.url("/start"), "text/plain").unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(res.body, b"arrived");
    assert_eq!(res.final_url, server.url("/end?step=3"));
    let paths: Vec<_> = server.requests().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, ["/start", "/middle", "/end?step=3"]);
}

#[test]
fn a_redirect_to_a_forbidden_address_is_refused_without_connecting() {
    let forbidden = silent_listener();
    let forbidden_addr = forbidden.local_addr().unwrap();
    let target = format!("http://{forbidden_addr}/secret");
    let by_name = format!("http://localhost:{}/secret", forbidden_addr.port());
    let server = Server::start(move |seen| match seen.path.as_str() {
        "/to-ip" => redirect("302 Found", &target),
        _ => redirect("307 Temporary Redirect", &by_name),
    });
    // The first hop is allowed (exempt), the same host on another port is not.
    let client = HttpClient::new(exempting(&[server.addr]));
    let msg = upstream_message(client.get(&server.url("/to-ip"), "*/*"));
    assert!(msg.contains("loopback"), "{msg}");
    assert!(msg.contains(&format!("refusing http://{forbidden_addr}")), "{msg}");
    assert!(msg.contains(&format!("redirect from http://{}", server.addr)), "{msg}");
    let msg = upstream_message(client.get(&server.url("/to-name"), "*/*"));
    assert!(msg.contains("not on a public address"), "{msg}");
    let msg = upstream_message(client.post(&server.url("/to-name"), "text/plain", b"x"));
    assert!(msg.contains("not on a public address"), "{msg}");
    assert_eq!(server.requests().len(), 3, "the first hop was made");
    assert!(saw_no_connection(&forbidden));
}

#[test]
fn a_redirect_to_another_scheme_is_refused() {
    let server = Server::start(|seen| match seen.path.as_str() {
        "/file" => redirect("302 Found", "file:///etc/passwd"),
        _ => redirect("302 Found", "gopher://pod.example/"),
    });
    let client = HttpClient::new(exempting(&[server.addr]));
    let msg = upstream_message(client.get(&server.url("/file"), "*/*"));
    assert!(msg.contains("only http and https"), "{msg}");
    let msg = upstream_message(client.get(&server.url("/gopher"), "*/*"));
    assert!(msg.contains("only http and https"), "{msg}");
}

#[test]
fn at_most_five_redirects_are_followed() {
    let server = Server::start(|seen| {
        let n: u32 = seen.path.trim_start_matches("/r").parse().unwrap_or(0);
        redirect("302 Found", &format!("/r{}", n + 1))
    });
    let client = HttpClient::new(exempting(&[server.addr]));
    let msg = upstream_message(client.get(&server.url("/r0"), "*/*"));
    assert!(msg.contains("redirected more than 5 times"), "{msg}");
    assert_eq!(server.requests().len(), 6, "the first request and 5 redirects");
}

#[test]
fn post_follows_only_method_preserving_redirects() {
    let server = Server::start(|seen| match seen.path.as_str() {
        "/old" => redirect("308 Permanent Redirect", "/new"),
        "/new" => response("200 OK", &[], b"stored"),
        _ => redirect("303 See Other", "/new"),
    });
    let client = HttpClient::new(exempting(&[server.addr]));
    let res = client
        .post(&server.url("/old"), "application/octet-stream", b"payload")
        .unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(res.final_url, server.url("/new"));
    // A 303 would turn the POST into a GET without the body: returned, not followed.
    let res = client
        .post(&server.url("/see-other"), "application/octet-stream", b"p")
        .unwrap();
    assert_eq!(res.status, 303);
    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    assert_eq!((seen[1].method.as_str(), seen[1].path.as_str()), ("POST", "/new"));
    assert_eq!(seen[1].body, b"payload");
}

#[test]
fn responses_over_the_size_cap_are_refused() {
    let big = vec![b'a'; 4096];
    let server = Server::start(move |seen| match seen.path.as_str() {
        "/exact" => response("200 OK", &[], &big[..1024]),
        "/declared" => response("200 OK", &[], &big),
        "/gzip" => {
            use std::io::Write as _;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(&vec![0u8; 512 * 1024]).unwrap();
            let packed = gz.finish().unwrap();
            assert!(packed.len() < 1024);
            response("200 OK", &[("Content-Encoding", "gzip")], &packed)
        }
        _ => {
            // No Content-Length: the body runs until the connection closes.
            let mut out = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
            out.extend_from_slice(&big);
            out
        }
    });
    let client = HttpClient::new(ClientPolicy {
        max_response_bytes: 1024,
        ..open_policy()
    });
    let res = client.get(&server.url("/exact"), "*/*").unwrap();
    assert_eq!(res.body.len(), 1024);
    for path in ["/declared", "/streamed", "/gzip"] {
        let msg = upstream_message(client.get(&server.url(path), "*/*"));
        assert!(msg.contains("larger than 1024 bytes"), "{path}: {msg}");
    }
    // An oversized answer is not a network failure.
    assert_eq!(client.get(&server.url("/exact"), "*/*").unwrap().status, 200);
}

#[test]
fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream); // accepted, never answered
        }
    });
    let client = HttpClient::new(ClientPolicy {
        request_timeout: Duration::from_secs(1),
        ..open_policy()
    });
    let started = Instant::now();
    let msg = upstream_message(client.get(&format!("http://{addr}/"), "*/*"));
    assert!(msg.contains("timed out"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    // A timeout is a network failure: remembered.
    let msg = upstream_message(client.get(&format!("http://{addr}/"), "*/*"));
    assert!(msg.contains("recently unreachable"), "{msg}");
}

#[test]
fn refused_connections_are_cached_per_origin() {
    let addr = closed_port();
    let url = format!("http://{addr}/inbox");
    let client = HttpClient::new(open_policy());
    let msg = upstream_message(client.get(&url, "*/*"));
    assert!(msg.contains("connection refused"), "{msg}");
    assert!(!msg.contains("recently unreachable"), "{msg}");

    // Something listens there now, but the origin is still answered from the cache,
    // for any path and method, by every clone of the client.
    let listener = TcpListener::bind(addr).unwrap();
    listener.set_nonblocking(true).unwrap();
    let started = Instant::now();
    let msg = upstream_message(client.clone().post(&format!("http://{addr}/other"), "text/plain", b"x"));
    assert!(msg.contains("recently unreachable"), "{msg}");
    assert!(msg.contains("connection refused"), "{msg}");
    assert!(msg.contains(&format!("http://{addr}")), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(1), "fails fast");
    assert!(saw_no_connection(&listener));

    // Other origins are unaffected; forgetting the failure lets the next request in.
    client.forget_failures(&format!("HTTP://{addr}"));
    let server = Server::on(listener, |_| response("200 OK", &[], b"back"));
    let res = client.get(&url, "*/*").unwrap();
    assert_eq!(res.body, b"back");
    assert_eq!(server.connections(), 1);
}

#[test]
fn cached_failures_expire() {
    let addr = closed_port();
    let url = format!("http://{addr}/");
    let client = HttpClient::new(ClientPolicy {
        failure_cache_ttl: Duration::from_millis(200),
        ..open_policy()
    });
    upstream_message(client.get(&url, "*/*"));
    let msg = upstream_message(client.get(&url, "*/*"));
    assert!(msg.contains("recently unreachable"), "{msg}");
    thread::sleep(Duration::from_millis(300));
    let msg = upstream_message(client.get(&url, "*/*"));
    assert!(!msg.contains("recently unreachable"), "{msg}");
    assert!(msg.contains("connection refused"), "{msg}");
}

#[test]
fn malformed_urls_are_refused_without_echoing_them() {
    let client = HttpClient::new(open_policy());
    for url in ["not a url", "ftp://pod.example/", "http://alice:hunter2@127.0.0.1:9/"] {
        let msg = upstream_message(client.get(url, "*/*"));
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(msg.starts_with("cannot fetch"), "{msg}");
    }
}
