#![no_main]
// The body and its invariants: kiroku::fuzzing::byte_range.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiroku::fuzzing::byte_range(data));
