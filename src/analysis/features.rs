//! The built-in analyzer's signal processing, pure and streaming: 16 kHz mono samples in, a
//! compact list of per-10-ms features out (energy, F0, K-weighted power), from which reports
//! for any stretch (one segment, the whole interview) are computed without the samples.
//!
//! - Energy: mean square of each 10 ms hop, in dBFS.
//! - F0: YIN (de Cheveigné & Kawahara 2002) on a 40 ms window at each hop, 60–500 Hz,
//!   threshold 0.15, parabolic interpolation.
//! - Loudness: ITU-R BS.1770 K-weighting (the two biquads of libebur128, derived for the sample
//!   rate), power summed per 100 ms so that 400 ms and 3 s blocks with 100 ms steps follow.

/// Samples per second this analyzer works at.
pub const RATE: u32 = 16_000;
/// One hop: 10 ms.
pub const HOP: usize = (RATE / 100) as usize;
/// Hops per 100 ms loudness sub-block.
pub const HOPS_PER_SUB: usize = 10;
/// YIN window: 40 ms.
const WINDOW: usize = HOP * 4;
const F0_MIN: f32 = 60.0;
const F0_MAX: f32 = 500.0;
const YIN_THRESHOLD: f32 = 0.15;
/// Below this a hop is not searched for a pitch at all.
const PITCH_FLOOR_DB: f32 = -55.0;
/// A sample at or beyond this magnitude counts as clipped.
const CLIP: f32 = 0.999;

/// What one 10 ms hop contributes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hop {
    pub db: f32,
    pub f0: Option<f32>,
}

/// The features so far.
#[derive(Debug, Default, Clone)]
pub struct Features {
    pub hops: Vec<Hop>,
    /// K-weighted mean square of each complete 100 ms.
    pub subs: Vec<f64>,
    pub clipped: u64,
    pub samples: u64,
}

/// Streaming feature extraction; feed samples in any pieces.
pub struct Extractor {
    kw: KWeighting,
    /// Samples not yet consumed as hops, with the lookahead YIN needs.
    pending: Vec<f32>,
    sub_sum: f64,
    sub_n: usize,
    pub features: Features,
}

impl Default for Extractor {
    fn default() -> Self {
        Extractor {
            kw: KWeighting::new(RATE as f64),
            pending: Vec::new(),
            sub_sum: 0.0,
            sub_n: 0,
            features: Features::default(),
        }
    }
}

impl Extractor {
    pub fn push(&mut self, samples: &[f32]) {
        for &x in samples {
            if x.abs() >= CLIP {
                self.features.clipped += 1;
            }
            let k = self.kw.filter(x as f64);
            self.sub_sum += k * k;
            self.sub_n += 1;
            if self.sub_n == HOP * HOPS_PER_SUB {
                self.features.subs.push(self.sub_sum / self.sub_n as f64);
                self.sub_sum = 0.0;
                self.sub_n = 0;
            }
        }
        self.features.samples += samples.len() as u64;
        self.pending.extend_from_slice(samples);
        self.take_hops(false);
    }

    /// Flushes the last hops (zero-padded lookahead) at the end of the stream.
    pub fn finish(&mut self) {
        self.take_hops(true);
    }

    fn take_hops(&mut self, at_end: bool) {
        let mut at = 0;
        while self.pending.len() - at >= if at_end { HOP } else { WINDOW } {
            let hop = &self.pending[at..at + HOP];
            let ms = hop.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>() / HOP as f64;
            let db = (10.0 * ms.max(1e-10).log10()) as f32;
            let end = (at + WINDOW).min(self.pending.len());
            let f0 = if db > PITCH_FLOOR_DB && end - at == WINDOW {
                yin(&self.pending[at..end], RATE as f32)
            } else {
                None
            };
            self.features.hops.push(Hop { db, f0 });
            at += HOP;
        }
        self.pending.drain(..at);
    }
}

/// YIN's estimate of the fundamental frequency of `frame`, if it is periodic enough.
pub fn yin(frame: &[f32], rate: f32) -> Option<f32> {
    let w = frame.len() / 2;
    let tau_min = (rate / F0_MAX) as usize;
    let tau_max = ((rate / F0_MIN) as usize).min(w - 1);
    let mut d = vec![0f32; tau_max + 2];
    for (tau, slot) in d.iter_mut().enumerate().take(tau_max + 2).skip(1) {
        let mut s = 0f32;
        for j in 0..w {
            let diff = frame[j] - frame[j + tau];
            s += diff * diff;
        }
        *slot = s;
    }
    let mut cmnd = vec![1f32; tau_max + 2];
    let mut running = 0f32;
    for tau in 1..tau_max + 2 {
        running += d[tau];
        cmnd[tau] = if running > 0.0 {
            d[tau] * tau as f32 / running
        } else {
            1.0
        };
    }
    let mut tau = tau_min.max(2);
    while tau <= tau_max {
        if cmnd[tau] < YIN_THRESHOLD {
            while tau < tau_max && cmnd[tau + 1] < cmnd[tau] {
                tau += 1;
            }
            let (a, b, c) = (cmnd[tau - 1], cmnd[tau], cmnd[tau + 1]);
            let denom = a - 2.0 * b + c;
            let shift = if denom.abs() > 1e-9 {
                (0.5 * (a - c) / denom).clamp(-0.5, 0.5)
            } else {
                0.0
            };
            return Some(rate / (tau as f32 + shift));
        }
        tau += 1;
    }
    None
}

/// The BS.1770 K-weighting pre-filter: a high shelf and a high pass, as one 4th-order IIR.
struct KWeighting {
    b: [f64; 5],
    a: [f64; 5],
    x: [f64; 5],
    y: [f64; 5],
}

impl KWeighting {
    /// Coefficients for any sample rate, as libebur128 derives them.
    fn new(rate: f64) -> KWeighting {
        let pi = std::f64::consts::PI;
        let (f0, g, q) = (1681.974450955533, 3.999843853973347, 0.7071752369554196);
        let k = (pi * f0 / rate).tan();
        let vh = 10f64.powf(g / 20.0);
        let vb = vh.powf(0.4996667741545416);
        let a0 = 1.0 + k / q + k * k;
        let pb = [
            (vh + vb * k / q + k * k) / a0,
            2.0 * (k * k - vh) / a0,
            (vh - vb * k / q + k * k) / a0,
        ];
        let pa = [1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0];
        let (f0, q) = (38.13547087602444, 0.5003270373238773);
        let k = (pi * f0 / rate).tan();
        let rb = [1.0, -2.0, 1.0];
        let d = 1.0 + k / q + k * k;
        let ra = [1.0, 2.0 * (k * k - 1.0) / d, (1.0 - k / q + k * k) / d];
        let conv = |p: [f64; 3], r: [f64; 3]| {
            let mut o = [0f64; 5];
            for i in 0..3 {
                for j in 0..3 {
                    o[i + j] += p[i] * r[j];
                }
            }
            o
        };
        KWeighting {
            b: conv(pb, rb),
            a: conv(pa, ra),
            x: [0.0; 5],
            y: [0.0; 5],
        }
    }

    fn filter(&mut self, input: f64) -> f64 {
        self.x.rotate_right(1);
        self.y.rotate_right(1);
        self.x[0] = input;
        let mut out = 0.0;
        for i in 0..5 {
            out += self.b[i] * self.x[i];
        }
        for i in 1..5 {
            out -= self.a[i] * self.y[i];
        }
        self.y[0] = out;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn tone(hz: f32, seconds: f32, amplitude: f32) -> Vec<f32> {
        (0..(seconds * RATE as f32) as usize)
            .map(|i| amplitude * (2.0 * std::f32::consts::PI * hz * i as f32 / RATE as f32).sin())
            .collect()
    }

    #[test]
    fn yin_finds_pure_tones_within_half_a_percent() {
        for hz in [80.0, 110.0, 220.0, 330.0, 440.0] {
            let x = tone(hz, 0.04, 0.5);
            let f = yin(&x, RATE as f32).unwrap();
            assert!((f - hz).abs() / hz < 0.005, "{hz} Hz read as {f}");
        }
    }

    #[test]
    fn silence_and_white_noise_have_no_pitch() {
        assert_eq!(yin(&[0.0; WINDOW], RATE as f32), None);
        let mut seed = 12345u32;
        let noise: Vec<f32> = (0..WINDOW)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect();
        assert_eq!(yin(&noise, RATE as f32), None);
    }

    #[test]
    fn hops_come_out_every_10_ms_whatever_the_piece_sizes() {
        let x = tone(200.0, 1.0, 0.3);
        let mut a = Extractor::default();
        a.push(&x);
        a.finish();
        let mut b = Extractor::default();
        for piece in x.chunks(777) {
            b.push(piece);
        }
        b.finish();
        assert_eq!(a.features.hops.len(), 100);
        assert_eq!(a.features.hops, b.features.hops);
        assert_eq!(a.features.subs.len(), 10);
    }
}
