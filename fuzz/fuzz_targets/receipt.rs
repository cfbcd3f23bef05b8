#![no_main]
// The body and its invariants: kiroku::fuzzing::receipt.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiroku::fuzzing::receipt(data));
