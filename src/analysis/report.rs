//! The built-in analyzer's report over a stretch of features: voice activity, talk time,
//! silence ratio, pauses, a speaking-rate proxy, loudness (EBU R128 integrated and range),
//! clipping and pitch. Every number carries its unit.
//!
//! Voice activity: a hop is speech when its energy is 12 dB over the stretch's noise floor
//! (its 10th percentile) and no more than 45 dB under its loudest hop (where the stretch has
//! no such floor, when it is voiced); speech runs closer than
//! [`PAUSE_MIN_S`] are joined (the gaps between words belong to talking), and runs shorter
//! than 60 ms dropped. A pause is a gap of at least [`PAUSE_MIN_S`] between two speech runs.
//! Syllable nuclei (after de Jong & Wempe 2009): voiced peaks of the smoothed energy inside
//! speech, at least 2 dB above the dip before them and 80 ms apart.

use serde_json::{Value, json};

use super::features::{Features, Hop};

pub const NAME: &str = crate::config::BUILTIN_ANALYZER;
pub const VERSION: &str = "1.0.0";
/// The shortest silence between speech that counts as a pause.
pub const PAUSE_MIN_S: f64 = 0.35;

fn unit(value: f64, unit: &str) -> Value {
    let v = if value.is_finite() {
        json!((value * 1000.0).round() / 1000.0)
    } else {
        Value::Null
    };
    json!({"value": v, "unit": unit})
}

/// The report over `hops` and the loudness `subs` that go with them.
pub fn report(hops: &[Hop], subs: &[f64], clipped: u64, samples: u64) -> Value {
    let hop_s = 0.01;
    let speech = voice_activity(hops);
    let talk: usize = speech.iter().map(|(a, b)| b - a).sum();
    let pauses: Vec<f64> = speech
        .windows(2)
        .map(|w| (w[1].0 - w[0].1) as f64 * hop_s)
        .collect();
    let duration = hops.len() as f64 * hop_s;
    let talk_s = talk as f64 * hop_s;
    let nuclei = syllable_nuclei(hops, &speech);
    let f0: Vec<f64> = speech
        .iter()
        .flat_map(|(a, b)| hops[*a..*b].iter().filter_map(|h| h.f0.map(f64::from)))
        .collect();
    let (median, spread) = pitch_stats(f0);
    json!({
        "analyzer": NAME,
        "version": VERSION,
        "duration": unit(duration, "s"),
        "talk_time": unit(talk_s, "s"),
        "silence_ratio": unit(if duration > 0.0 { 1.0 - talk_s / duration } else { f64::NAN }, "ratio"),
        "pauses": {
            "count": pauses.len(),
            "mean": unit(if pauses.is_empty() { 0.0 } else { pauses.iter().sum::<f64>() / pauses.len() as f64 }, "s"),
            "longest": unit(pauses.iter().cloned().fold(0.0, f64::max), "s"),
            "minimum_counted": unit(PAUSE_MIN_S, "s"),
        },
        "speaking_rate": unit(if talk_s > 0.0 { nuclei as f64 / talk_s } else { f64::NAN }, "syllable nuclei per speech second"),
        "loudness": {
            "integrated": unit(integrated_lufs(subs), "LUFS"),
            "range": unit(loudness_range(subs), "LU"),
        },
        "clipping_ratio": unit(if samples > 0 { clipped as f64 / samples as f64 } else { 0.0 }, "ratio of samples"),
        "pitch": {
            "median": unit(median, "Hz"),
            "spread": unit(spread, "semitones (interquartile range)"),
        },
        // Where speech was, for a timeline: [start, end) pairs from the report's start.
        "speech_runs": {
            "value": speech
                .iter()
                .map(|(a, b)| json!([(*a as f64 * hop_s * 100.0).round() / 100.0,
                                     (*b as f64 * hop_s * 100.0).round() / 100.0]))
                .collect::<Vec<_>>(),
            "unit": "s",
        },
    })
}

/// The report over all of `f`.
pub fn whole(f: &Features) -> Value {
    report(&f.hops, &f.subs, f.clipped, f.samples)
}

/// Speech runs as half-open hop ranges.
pub fn voice_activity(hops: &[Hop]) -> Vec<(usize, usize)> {
    if hops.is_empty() {
        return Vec::new();
    }
    let mut dbs: Vec<f32> = hops.iter().map(|h| h.db).collect();
    dbs.sort_by(f32::total_cmp);
    let floor = dbs[dbs.len() / 10];
    let peak = dbs[dbs.len() - 1];
    // With silence to compare against, energy decides; a stretch without (one long tone, or
    // noise throughout) has no floor to stand out from, so there only voiced hops are speech.
    let has_floor = peak - floor >= 12.0;
    let threshold = (floor + 12.0).max(peak - 45.0);
    let is_speech = |h: &Hop| {
        if has_floor {
            h.db > threshold
        } else {
            h.f0.is_some() && h.db > -60.0
        }
    };
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, h) in hops.iter().enumerate() {
        match (is_speech(h), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, hops.len()));
    }
    let join = (PAUSE_MIN_S * 100.0).round() as usize;
    let mut joined: Vec<(usize, usize)> = Vec::new();
    for r in runs {
        match joined.last_mut() {
            Some(last) if r.0 - last.1 < join => last.1 = r.1,
            _ => joined.push(r),
        }
    }
    joined.retain(|(a, b)| b - a >= 6);
    joined
}

fn syllable_nuclei(hops: &[Hop], speech: &[(usize, usize)]) -> usize {
    let mut count = 0;
    for &(a, b) in speech {
        let smooth: Vec<f32> = (a..b)
            .map(|i| {
                let lo = i.saturating_sub(2).max(a);
                let hi = (i + 3).min(b);
                hops[lo..hi].iter().map(|h| h.db).sum::<f32>() / (hi - lo) as f32
            })
            .collect();
        let mut dip = f32::INFINITY;
        let mut last_peak: Option<usize> = None;
        for i in 1..smooth.len().saturating_sub(1) {
            dip = dip.min(smooth[i]);
            let is_peak = smooth[i] >= smooth[i - 1] && smooth[i] > smooth[i + 1];
            if is_peak
                && smooth[i] - dip >= 2.0
                && hops[a + i].f0.is_some()
                && last_peak.is_none_or(|p| i - p >= 8)
            {
                count += 1;
                last_peak = Some(i);
                dip = smooth[i];
            }
        }
    }
    count
}

fn lufs(ms: f64) -> f64 {
    -0.691 + 10.0 * ms.max(1e-20).log10()
}

/// Mean squares of `len`-sub-block windows stepping one sub-block (100 ms).
fn blocks(subs: &[f64], len: usize) -> Vec<f64> {
    if subs.len() < len {
        return Vec::new();
    }
    subs.windows(len)
        .map(|w| w.iter().sum::<f64>() / len as f64)
        .collect()
}

/// BS.1770-4 integrated loudness: 400 ms blocks, absolute gate −70 LUFS, relative gate −10 LU.
pub fn integrated_lufs(subs: &[f64]) -> f64 {
    let b: Vec<f64> = blocks(subs, 4)
        .into_iter()
        .filter(|m| lufs(*m) > -70.0)
        .collect();
    if b.is_empty() {
        return f64::NEG_INFINITY;
    }
    let relative = lufs(b.iter().sum::<f64>() / b.len() as f64) - 10.0;
    let gated: Vec<f64> = b.into_iter().filter(|m| lufs(*m) > relative).collect();
    lufs(gated.iter().sum::<f64>() / gated.len() as f64)
}

/// EBU Tech 3342 loudness range: 3 s blocks, gates −70 LUFS and −20 LU, 10th to 95th percentile.
pub fn loudness_range(subs: &[f64]) -> f64 {
    let st: Vec<f64> = blocks(subs, 30)
        .into_iter()
        .filter(|m| lufs(*m) > -70.0)
        .collect();
    if st.is_empty() {
        return 0.0;
    }
    let relative = lufs(st.iter().sum::<f64>() / st.len() as f64) - 20.0;
    let mut l: Vec<f64> = st.into_iter().map(lufs).filter(|x| *x > relative).collect();
    if l.is_empty() {
        return 0.0;
    }
    l.sort_by(f64::total_cmp);
    let at = |q: f64| l[((l.len() - 1) as f64 * q).round() as usize];
    at(0.95) - at(0.10)
}

fn pitch_stats(mut f0: Vec<f64>) -> (f64, f64) {
    if f0.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    f0.sort_by(f64::total_cmp);
    let at = |q: f64| f0[((f0.len() - 1) as f64 * q).round() as usize];
    (at(0.5), 12.0 * (at(0.75) / at(0.25)).log2())
}

#[cfg(test)]
mod tests {
    use super::super::features::{Extractor, RATE};
    use super::*;

    fn features(x: &[f32]) -> Features {
        let mut e = Extractor::default();
        e.push(x);
        e.finish();
        e.features
    }

    fn tone(hz: f32, seconds: f32, amplitude: f32) -> Vec<f32> {
        (0..(seconds * RATE as f32) as usize)
            .map(|i| amplitude * (2.0 * std::f32::consts::PI * hz * i as f32 / RATE as f32).sin())
            .collect()
    }

    #[test]
    fn a_pure_tone_has_its_pitch_within_2_percent() {
        let r = whole(&features(&tone(220.0, 3.0, 0.3)));
        let f = r["pitch"]["median"]["value"].as_f64().unwrap();
        assert!((f - 220.0).abs() / 220.0 < 0.02, "{f}");
        assert!(r["pitch"]["spread"]["value"].as_f64().unwrap() < 0.1);
    }

    #[test]
    fn tone_bursts_between_silences_give_talk_time_and_exact_pauses() {
        let mut x = vec![0.0; RATE as usize / 2];
        for (burst, gap) in [(1.0, 0.8), (1.5, 1.2), (0.7, 0.7), (2.0, 0.0)] {
            x.extend(tone(180.0, burst, 0.2));
            x.extend(vec![0.0; (gap * RATE as f32) as usize]);
        }
        let r = whole(&features(&x));
        let talk = r["talk_time"]["value"].as_f64().unwrap();
        assert!((talk - 5.2).abs() < 0.1, "{talk}");
        assert_eq!(r["pauses"]["count"], 3);
        let longest = r["pauses"]["longest"]["value"].as_f64().unwrap();
        assert!((longest - 1.2).abs() < 0.05, "{longest}");
        // The timeline: four runs, the first starting after the leading half second.
        let runs = r["speech_runs"]["value"].as_array().unwrap();
        assert_eq!(runs.len(), 4, "{runs:?}");
        let first = runs[0][0].as_f64().unwrap();
        assert!((first - 0.5).abs() < 0.05, "{first}");
        let last_end = runs[3][1].as_f64().unwrap();
        assert!((last_end - 8.4).abs() < 0.1, "{last_end}");
    }

    #[test]
    fn a_full_scale_sine_at_1_khz_reads_about_minus_3_lufs_and_clips() {
        // BS.1770: a 0 dBFS 997 Hz sine in one channel reads −3.01 LUFS.
        let r = whole(&features(&tone(997.0, 5.0, 1.0)));
        let l = r["loudness"]["integrated"]["value"].as_f64().unwrap();
        assert!((l + 3.01).abs() < 0.1, "{l}");
        assert!(r["clipping_ratio"]["value"].as_f64().unwrap() > 0.0);
    }
}
