//! Test inputs for the policy's unit tests: small TBSCertificates and CAs
//! built with x509-cert types, keys from tests/fixtures/keys.
