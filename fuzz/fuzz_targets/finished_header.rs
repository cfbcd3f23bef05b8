#![no_main]
// The body and its invariants: kiroku::fuzzing::finished_header.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiroku::fuzzing::finished_header(data));
