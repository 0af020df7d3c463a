//! A certificate authority made in the test and the leaves it signs.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A CA for one test.
pub struct Ca {
    /// Its certificate, PEM.
    pub pem: String,
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A leaf certificate and its key.
pub struct Leaf {
    /// The certificate, PEM.
    pub pem: String,
    /// Its key.
    pub key: KeyPair,
}

impl Leaf {
    /// The key, PEM (PKCS#8).
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }
}

impl Ca {
    /// A self-signed CA whose common name is `name`.
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        let cert = p.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            cert,
            key,
        }
    }

    /// A leaf for `names` (the first is its common name) with a new key.
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        self.leaf_with(names, KeyPair::generate().unwrap())
    }

    /// A leaf for `names` (the first is its common name) with `key`.
    pub fn leaf_with(&self, names: &[&str], key: KeyPair) -> Leaf {
        let mut p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
        p.distinguished_name.push(DnType::CommonName, names[0]);
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            pem: cert.pem(),
            key,
        }
    }
}

/// A CA (its PEM) and a leaf it signed for localhost/127.0.0.1: (CA PEM,
/// leaf certificate PEM, leaf key PEM).
pub fn ca_and_leaf(ca_name: &str) -> (String, String, String) {
    let ca = Ca::new(ca_name);
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    let key = leaf.key_pem();
    (ca.pem, leaf.pem, key)
}
