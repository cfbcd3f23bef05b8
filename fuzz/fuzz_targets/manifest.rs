#![no_main]
// The body and its invariants: kiroku::fuzzing::manifest.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiroku::fuzzing::manifest(data));
