#![no_main]
// The body and its invariants: kiroku::fuzzing::audit_log.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiroku::fuzzing::audit_log(data));
