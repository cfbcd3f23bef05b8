use kiroku::segment::*;
use std::time::Duration;
fn main() {
    let profiles = Profiles::load(std::path::Path::new("pipelines")).unwrap();
    for f in std::env::args().skip(1) {
        let bytes = std::fs::read(&f).unwrap();
        let ct = sniff_content_type(&bytes).unwrap_or("video/webm");
        let p = profiles.for_content_type(ct).unwrap();
        let (mut seg, input) = Segmenter::start(p, Duration::from_secs(4)).unwrap();
        let t = std::thread::spawn(move || {
            for c in bytes.chunks(5000) {
                if input.push(c.to_vec()).is_err() {
                    break;
                }
            }
            input.end();
        });
        let mut out = Vec::new();
        loop {
            match seg.next() {
                Ok(SegmenterEvent::Segment(s)) => {
                    println!(
                        "{f}: #{} {:?} {} bytes {:.2}-{:.2}s key={} last={}",
                        s.index,
                        s.kind,
                        s.bytes.len(),
                        s.start_ns as f64 / 1e9,
                        s.end_ns as f64 / 1e9,
                        s.starts_on_keyframe,
                        s.is_last
                    );
                    out.extend(s.bytes);
                }
                Ok(SegmenterEvent::End) => break,
                Err(e) => {
                    println!("{f}: ERROR {e}");
                    break;
                }
            }
        }
        t.join().unwrap();
        std::fs::write(
            format!(
                "/tmp/out-{}",
                std::path::Path::new(&f)
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
            ),
            out,
        )
        .unwrap();
    }
}
