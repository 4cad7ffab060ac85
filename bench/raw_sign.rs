//! The token's raw signing rate through cardca's shared crate: one login,
//! back-to-back C_Sign with the key, nothing else. This is the physical
//! limit the issuance pipeline is measured against in `make bench`.
//!
//! Usage: raw_sign KEY-URI COUNT   (PIN from $CARDCA_PIN_SOURCE, e.g. file:pin)

use std::time::Instant;

use cardca::cryptoki::mechanism::Mechanism;
use cardca::keys::KeySpec;
use cardca::pin::PinSource;
use cardca::session::{self, KeySession};
use cardca::uri::Uri;
use cardca::{Error, Result};

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raw_sign: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [uri, count] = args.as_slice() else {
        return Err(Error::usage("usage: raw_sign KEY-URI COUNT"));
    };
    let count: u32 = count.parse().map_err(|_| Error::usage("COUNT is a number"))?;
    let pin_source = std::env::var("CARDCA_PIN_SOURCE").ok().map(|s| PinSource::parse(&s)).transpose()?;
    let flags = session::Options { pin_source, ..session::Options::default() };
    let ks = KeySession::open(&flags, Some(&Uri::parse(uri)?), None, Default::default())?;
    let session = ks.session()?;
    let digest = [0x5au8; 32];
    let (mechanism, data) = match KeySpec::from_spki(&ks.spki)? {
        KeySpec::Rsa(_) => (Mechanism::Sha256RsaPkcs, vec![0x5au8; 512]),
        KeySpec::Ed25519 => (
            Mechanism::Eddsa(cardca::cryptoki::mechanism::eddsa::EddsaParams::new(
                cardca::cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
            )),
            vec![0x5au8; 512],
        ),
        KeySpec::Ec(_) => (Mechanism::Ecdsa, digest.to_vec()),
    };
    let start = Instant::now();
    for _ in 0..count {
        session.sign(&mechanism, ks.key, &data)?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{:.0}", f64::from(count) / secs);
    Ok(())
}
