#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cardca::fuzz::audit_log(data));
