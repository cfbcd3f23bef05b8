#![no_main]
// The body and its invariants: kiroku::fuzzing::whip_offer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kiroku::fuzzing::whip_offer(data));
