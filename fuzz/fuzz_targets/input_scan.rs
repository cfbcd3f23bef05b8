#![no_main]
// The body and its invariants: kiroku::fuzzing::input_scan.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiroku::fuzzing::input_scan(data));
