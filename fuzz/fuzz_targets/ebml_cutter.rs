#![no_main]
// The body and its invariants: kiroku::fuzzing::ebml_cutter.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiroku::fuzzing::ebml_cutter(data));
