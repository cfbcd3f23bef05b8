#![no_main]
// The body and its invariants: kiroku::fuzzing::sealed_object.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiroku::fuzzing::sealed_object(data));
