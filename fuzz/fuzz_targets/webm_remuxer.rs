#![no_main]
// The body and its invariants: kiroku::fuzzing::webm_remuxer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiroku::fuzzing::webm_remuxer(data));
