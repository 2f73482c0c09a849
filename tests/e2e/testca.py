"""Certificate authorities made for one test run, with Python's `cryptography`.

`TestCA(folder, name)` writes its own certificate to `ca.pem` in `folder`;
`ca.issue(names)` writes a server certificate (and its key) for those names, IP
addresses or DNS names, signed by it. Every key is ECDSA P-256 (quick to make); the
certificates carry the extensions that strict verifiers such as webpki require (CA
basic constraints and key usage on the CA, subjectAltName and serverAuth on the
server certificate).

Used by the end-to-end rig (rig.py) and, as a script, by the Rust mail tests:
`python3 testca.py FOLDER` writes a trusted CA (`ca.pem`), a server certificate from
it for 127.0.0.1 and localhost (`good.pem`, `good.key`), one for another name
(`misnamed.pem`, `.key`), and one from a second, untrusted CA (`stranger.pem`, `.key`).
"""

import datetime
import ipaddress
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK = ("127.0.0.1", "localhost")


class ServerCert:
    """A certificate file and its key file."""

    def __init__(self, cert, key):
        self.cert = Path(cert)
        self.key = Path(key)

    def server_context(self):
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key, path):
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    path.chmod(0o600)


class TestCA:
    """A certificate authority whose certificate is `self.pem`."""

    __test__ = False  # not a pytest test class

    def __init__(self, folder, name="lifeboat test CA"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        public = self.key.public_key()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                    key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        slug = "".join(c if c.isalnum() else "-" for c in name.lower())
        self.pem = self.folder / f"{slug}.pem"
        self.pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self._issued = 0

    def issue(self, names=LOOPBACK, stem=None):
        """A server certificate for `names` (IP addresses or DNS names)."""
        self._issued += 1
        stem = stem or f"{self.pem.stem}-server-{self._issued}"
        key = ec.generate_private_key(ec.SECP256R1())
        alt = []
        for n in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                alt.append(x509.DNSName(n))
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_path, key_path = self.folder / f"{stem}.pem", self.folder / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, key_path)
        return ServerCert(cert_path, key_path)


def main(folder):
    folder = Path(folder)
    ca = TestCA(folder, "lifeboat test CA")
    (folder / "ca.pem").write_bytes(ca.pem.read_bytes())
    ca.issue(LOOPBACK, stem="good")
    ca.issue(("elsewhere.test",), stem="misnamed")
    TestCA(folder, "stranger CA").issue(LOOPBACK, stem="stranger")


if __name__ == "__main__":
    main(sys.argv[1])
