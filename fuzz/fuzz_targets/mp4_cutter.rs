#![no_main]
// The body and its invariants: kiroku::fuzzing::mp4_cutter.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiroku::fuzzing::mp4_cutter(data));
