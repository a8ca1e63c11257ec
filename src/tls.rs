//! HTTPS set-up: the rustls server configuration built from the PEM files given with
//! `--tls-cert` and `--tls-key` (TLS 1.2 and 1.3, ALPN `h2` then `http/1.1`), and the run-time
//! probe for kernel TLS.
//!
//! What this is not: connection handling. [`crate::server`] runs the handshake and hands the
//! stream to hyper; [`crate::body::FileStrategy`] decides how file bytes are read under TLS
//! (never from a mapping: encryption reads every byte in user space; see docs/architecture.md,
//! "The zero-copy seam").
//!
//! Kernel TLS (the `tls` TCP ULP, Linux >= 4.13) would let the kernel encrypt, so `sendfile`
//! could keep working under HTTPS. [`ktls_available`] only detects it; reelserve does not hand
//! session keys to the kernel yet, so HTTPS uses the copy path on every kernel (docs/https.md).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// ALPN protocols offered, in the server's order of preference (RFC 7301; RFC 9113 §3.2 says h2
/// over TLS is chosen only this way).
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Where Linux lists the TCP upper-layer protocols it can attach to a socket.
const AVAILABLE_ULP: &str = "/proc/sys/net/ipv4/tcp_available_ulp";

/// Why the TLS configuration could not be built. Printed for a person: which file, what is wrong
/// with it, what to do.
#[derive(Debug)]
pub struct TlsError {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// A file could not be read at all.
    Read(PemFile, PathBuf, io::Error),
    /// A file was read but holds no section of the expected kind.
    Missing(PemFile, PathBuf),
    /// A file is not valid PEM.
    Malformed(PemFile, PathBuf, pem::Error),
    /// The private key is encrypted with a passphrase, which the server cannot ask for.
    EncryptedKey(PathBuf),
    /// rustls refused the pair (e.g. the key does not belong to the certificate).
    Refused {
        cert: PathBuf,
        key: PathBuf,
        error: rustls::Error,
    },
}

#[derive(Debug, Clone, Copy)]
enum PemFile {
    Cert,
    Key,
}

impl PemFile {
    fn what(self) -> &'static str {
        match self {
            PemFile::Cert => "TLS certificate",
            PemFile::Key => "TLS private key",
        }
    }

    fn expected(self) -> &'static str {
        match self {
            PemFile::Cert => "a PEM certificate chain (-----BEGIN CERTIFICATE-----) for --tls-cert",
            PemFile::Key => {
                "a PEM private key (-----BEGIN PRIVATE KEY-----, RSA or EC) for --tls-key"
            }
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAKE: &str = "scripts/make-cert.sh makes a self-signed pair";
        match &self.kind {
            Kind::Read(file, path, error) => write!(
                f,
                "cannot read {} {}: {error} (pass {}; {MAKE})",
                file.what(),
                path.display(),
                file.expected()
            ),
            Kind::Missing(file, path) => write!(
                f,
                "no {} in {} (expected {})",
                file.what(),
                path.display(),
                file.expected()
            ),
            Kind::Malformed(file, path, error) => write!(
                f,
                "{} {} is not valid PEM: {error} (expected {})",
                file.what(),
                path.display(),
                file.expected()
            ),
            Kind::EncryptedKey(path) => write!(
                f,
                "TLS private key {path} is encrypted with a passphrase, which reelserve cannot \
                 ask for; decrypt it once with `openssl pkey -in {path} -out key.pem` and pass \
                 key.pem to --tls-key",
                path = path.display()
            ),
            Kind::Refused { cert, key, error } => write!(
                f,
                "TLS certificate {} and key {} cannot be used together: {error} \
                 (is the key the one the certificate was made for?)",
                cert.display(),
                key.display()
            ),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Read(_, _, error) => Some(error),
            Kind::Malformed(_, _, error) => Some(error),
            Kind::Refused { error, .. } => Some(error),
            Kind::Missing(..) | Kind::EncryptedKey(_) => None,
        }
    }
}

impl TlsError {
    fn pem(file: PemFile, path: &Path, error: pem::Error) -> TlsError {
        let path = path.to_path_buf();
        let kind = match error {
            pem::Error::Io(error) => Kind::Read(file, path, error),
            pem::Error::NoItemsFound => Kind::Missing(file, path),
            error => Kind::Malformed(file, path, error),
        };
        TlsError { kind }
    }
}

/// The server configuration for `cert` (a PEM chain, leaf first) and `key`: TLS 1.3 and 1.2
/// with rustls' ring provider, ALPN `h2` and `http/1.1`, no client certificates.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|sections| sections.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::pem(PemFile::Cert, cert, e))?;
    if chain.is_empty() {
        return Err(TlsError::pem(PemFile::Cert, cert, pem::Error::NoItemsFound));
    }
    let key_pem =
        std::fs::read(key).map_err(|e| TlsError::pem(PemFile::Key, key, pem::Error::Io(e)))?;
    if is_encrypted_key(&key_pem) {
        return Err(TlsError {
            kind: Kind::EncryptedKey(key.to_path_buf()),
        });
    }
    let private_key =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::pem(PemFile::Key, key, e))?;
    let refused = |error| TlsError {
        kind: Kind::Refused {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            error,
        },
    };
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(refused)?
            .with_no_client_auth()
            // Checks that the key is usable and belongs to the leaf certificate.
            .with_single_cert(chain, private_key)
            .map_err(refused)?;
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Whether a PEM key file holds an encrypted key: PKCS#8 (`BEGIN ENCRYPTED PRIVATE KEY`, what
/// `openssl genpkey -aes256` writes) or the legacy OpenSSL form (`Proc-Type: 4,ENCRYPTED` in an
/// `RSA`/`EC PRIVATE KEY` section). rustls reads neither, and would only say "no key found".
fn is_encrypted_key(pem: &[u8]) -> bool {
    let contains = |needle: &[u8]| pem.windows(needle.len()).any(|w| w == needle);
    contains(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || contains(b"Proc-Type: 4,ENCRYPTED")
}

/// Whether the kernel offers the `tls` TCP upper-layer protocol (kernel TLS), from
/// `/proc/sys/net/ipv4/tcp_available_ulp`; `Err` says why not, for the start-up log.
pub fn ktls_available() -> Result<(), String> {
    match std::fs::read_to_string(AVAILABLE_ULP) {
        Ok(list) => ulp_list_offers_tls(&list),
        Err(error) => Err(format!(
            "cannot read {AVAILABLE_ULP}: {error} (kernel TLS needs Linux >= 4.13)"
        )),
    }
}

/// The parser behind [`ktls_available`]: `content` is the file's text, ULP names separated by
/// spaces (e.g. `"espintcp mptcp tls\n"`).
fn ulp_list_offers_tls(content: &str) -> Result<(), String> {
    if content.split_whitespace().any(|name| name == "tls") {
        return Ok(());
    }
    Err(format!(
        "{AVAILABLE_ULP} lists {:?}, no \"tls\"; a kernel built with CONFIG_TLS adds it \
         with `modprobe tls`",
        content.trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulp_list_with_tls_offers_kernel_tls() {
        assert_eq!(ulp_list_offers_tls("tls\n"), Ok(()));
        assert_eq!(ulp_list_offers_tls("espintcp mptcp tls\n"), Ok(()));
        assert_eq!(ulp_list_offers_tls("tls mptcp"), Ok(()));
    }

    #[test]
    fn ulp_list_without_tls_says_what_it_has() {
        let reason = ulp_list_offers_tls("mptcp\n").unwrap_err();
        assert!(
            reason.starts_with(&format!("{AVAILABLE_ULP} lists \"mptcp\", no \"tls\";")),
            "{reason}"
        );
        assert!(ulp_list_offers_tls("")
            .unwrap_err()
            .contains(" lists \"\", no"));
        // A name that merely contains "tls" is not the tls ULP.
        assert!(ulp_list_offers_tls("ktls_test tls2\n").is_err());
    }

    #[test]
    fn missing_files_are_named() {
        let error = server_config(Path::new("/nope/cert.pem"), Path::new("/nope/key.pem"))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("cannot read TLS certificate /nope/cert.pem:"),
            "{error}"
        );
    }

    #[test]
    fn a_file_without_the_expected_section_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "not a certificate\n").unwrap();
        let error = server_config(&cert, Path::new("/nope/key.pem"))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(&format!("no TLS certificate in {}", cert.display())),
            "{error}"
        );
    }

    #[test]
    fn an_encrypted_key_is_named_with_how_to_decrypt_it() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("enc.pem");
        // Syntactically a certificate section, which is all that is read before the key.
        std::fs::write(
            &cert,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        for encrypted in [
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI\n\
             -----END ENCRYPTED PRIVATE KEY-----\n",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
             DEK-Info: AES-256-CBC,0123456789ABCDEF0123456789ABCDEF\n\nMIIE\n\
             -----END RSA PRIVATE KEY-----\n",
        ] {
            std::fs::write(&key, encrypted).unwrap();
            let error = server_config(&cert, &key).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("TLS private key {} is encrypted", key.display())),
                "{error}"
            );
            assert!(
                error.contains(&format!("openssl pkey -in {} -out key.pem", key.display())),
                "{error}"
            );
            assert_eq!(error.lines().count(), 1);
        }
        assert!(!is_encrypted_key(
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQ==\n-----END PRIVATE KEY-----\n"
        ));
    }

    #[test]
    fn tls_error_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<TlsError>();
    }
}
