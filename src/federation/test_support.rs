//! Shared helpers for the federation tests: the vendored reference files, test keys,
//! an independent XML reader (python3's `xml.etree`) and a no-panic fuzzing helper.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use rand::{Rng, SeedableRng};
use rsa::{RsaPrivateKey, RsaPublicKey};

use super::signature::{private_key_from_pem, public_key_from_pem};

/// The text of a file under `tests/reference/`.
pub fn reference(path: &str) -> String {
    let full = format!("{}/tests/reference/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The 1024-bit key pair of the signature vectors.
pub fn vector_key_pair() -> (RsaPrivateKey, RsaPublicKey) {
    let private_key = private_key_from_pem(&reference("signature-vectors/author_private_key.pem")).unwrap();
    let public_key = public_key_from_pem(&reference("signature-vectors/author_public_key.pem")).unwrap();
    (private_key, public_key)
}

/// A 2048-bit key generated once per test run.
pub fn key_2048() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap())
}

/// Another 2048-bit key, for "wrong key" cases.
pub fn other_key_2048() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap())
}

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
