//! The snapshot as the gateway streams it: the decoder of its JSON messages and the check of
//! the bytes (a bbolt database, then etcd's SHA-256 of it).

use serde_json::Value;

use super::admin::uint;
use crate::rollout::Error;
/// The most gateway bytes read for a snapshot of at most `limit` bytes: base64 is 4/3 of the
/// bytes, plus about 100 bytes of JSON per 32 KiB message; twice, and a MiB, is ample.
pub(super) fn max_stream(limit: u64) -> u64 {
    limit.saturating_mul(2).saturating_add(1 << 20)
}

/// The largest gateway message taken (etcd sends 32 KiB of snapshot per message, about 44 KB of
/// JSON): what bounds the decoder's memory.
const MAX_MESSAGE: usize = 4 << 20;

/// The gateway's answer to a server-streaming call, decoded as it arrives: one JSON object per
/// message, `{"result":{"blob":"<base64>","remaining_bytes":"…"}}` (etcd 3.4 leaves out the
/// header and a zero `remaining_bytes`), or `{"error":{…}}` when the stream fails; the gateway
/// ends each with a newline, but objects are found by their braces, so any split of the bytes
/// (across an object, a string, a base64 quantum) and any whitespace between objects decode the
/// same. Each message's blob goes to the sink as soon as its object is complete: memory holds
/// one message.
#[derive(Debug)]
pub struct SnapshotDecoder {
    /// The bytes of the object under way.
    pending: Vec<u8>,
    /// Nesting depth inside the object under way (0 between objects).
    depth: usize,
    in_string: bool,
    escaped: bool,
    messages: usize,
    decoded: u64,
    limit: u64,
}

impl SnapshotDecoder {
    /// A decoder refusing more than `limit` bytes of snapshot.
    pub fn new(limit: u64) -> SnapshotDecoder {
        SnapshotDecoder {
            pending: Vec::new(),
            depth: 0,
            in_string: false,
            escaped: false,
            messages: 0,
            decoded: 0,
            limit,
        }
    }

    /// Messages decoded so far.
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// Snapshot bytes handed to the sink so far.
    pub fn decoded(&self) -> u64 {
        self.decoded
    }

    /// Takes the next bytes of the answer, handing the blob of each message completed to `out`.
    pub fn feed(
        &mut self,
        bytes: &[u8],
        out: &mut dyn FnMut(&[u8]) -> std::result::Result<(), Error>,
    ) -> std::result::Result<(), Error> {
        // Where the object under way starts in `bytes` (0: it began in an earlier feed).
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if self.depth == 0 {
                match b {
                    b' ' | b'\t' | b'\r' | b'\n' => continue,
                    b'{' => {
                        self.depth = 1;
                        start = i;
                        continue;
                    }
                    _ => {
                        return Err(Error::NotObjectStart {
                            messages: self.messages,
                            found: b as char,
                        })
                    }
                }
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        self.take(&bytes[start..=i])?;
                        let message = std::mem::take(&mut self.pending);
                        let done = self.message(&message, out);
                        self.pending = message;
                        self.pending.clear();
                        done?;
                    }
                }
                _ => {}
            }
        }
        if self.depth > 0 {
            self.take(&bytes[start..])?;
        }
        Ok(())
    }

    fn take(&mut self, part: &[u8]) -> std::result::Result<(), Error> {
        if self.pending.len() + part.len() > MAX_MESSAGE {
            return Err(Error::MessageTooLong {
                n: self.messages + 1,
                max: MAX_MESSAGE,
            });
        }
        self.pending.extend_from_slice(part);
        Ok(())
    }

    fn message(
        &mut self,
        text: &[u8],
        out: &mut dyn FnMut(&[u8]) -> std::result::Result<(), Error>,
    ) -> std::result::Result<(), Error> {
        use base64::Engine;
        let n = self.messages + 1;
        let v: Value =
            serde_json::from_slice(text).map_err(|source| Error::MessageNotJson { n, source })?;
        if !v["error"].is_null() {
            let e = &v["error"];
            let said = e["message"]
                .as_str()
                .or(e.as_str())
                .map_or_else(|| e.to_string(), str::to_string);
            return Err(Error::StreamFailed {
                messages: self.messages,
                said,
            });
        }
        let blob = v["result"]["blob"].as_str().unwrap_or("");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(blob)
            .map_err(|source| Error::BlobNotBase64 { n, source })?;
        self.messages = n;
        self.decoded += bytes.len() as u64;
        // etcd says how much follows: refuse what cannot fit before it is written.
        let remaining = uint(&v["result"]["remaining_bytes"]);
        let announced = self.decoded.saturating_add(remaining);
        if announced > self.limit {
            return Err(Error::SnapshotTooLarge {
                limit: self.limit,
                bytes: if remaining > 0 {
                    announced
                } else {
                    self.decoded
                },
                announced: remaining > 0,
                messages: n,
            });
        }
        if !bytes.is_empty() {
            out(&bytes)?;
        }
        Ok(())
    }

    /// The end of the answer: every message complete, at least one. Returns the bytes decoded.
    pub fn finish(self) -> std::result::Result<u64, Error> {
        if self.depth > 0 {
            return Err(Error::EndsInsideMessage {
                n: self.messages + 1,
                bytes: self.pending.len(),
            });
        }
        if self.messages == 0 {
            return Err(Error::NoSnapshotMessage);
        }
        Ok(self.decoded)
    }
}

/// The snapshot's bytes, checked as they pass: a bbolt database (its meta page's magic
/// 0xED0CDAED at byte 16) followed by etcd's SHA-256 of it. The digest runs over everything but
/// the last 32 bytes seen, which are held back: the end of the stream tells they were the sum.
pub struct SnapshotSum {
    head: Vec<u8>,
    digest: aws_lc_rs::digest::Context,
    /// The last (at most) 32 bytes, not digested yet.
    tail: Vec<u8>,
    total: u64,
}

impl Default for SnapshotSum {
    fn default() -> Self {
        SnapshotSum::new()
    }
}

impl SnapshotSum {
    pub fn new() -> SnapshotSum {
        SnapshotSum {
            head: Vec::with_capacity(20),
            digest: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
            tail: Vec::with_capacity(64),
            total: 0,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if self.head.len() < 20 {
            let n = (20 - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
        }
        if bytes.len() >= 32 {
            self.digest.update(&self.tail);
            let (body, last) = bytes.split_at(bytes.len() - 32);
            self.digest.update(body);
            self.tail.clear();
            self.tail.extend_from_slice(last);
        } else {
            self.tail.extend_from_slice(bytes);
            if self.tail.len() > 32 {
                let over = self.tail.len() - 32;
                self.digest.update(&self.tail[..over]);
                self.tail.drain(..over);
            }
        }
    }

    /// Bytes seen.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Checks the snapshot seen; returns the database's size.
    pub fn finish(self) -> std::result::Result<u64, Error> {
        if self.total < 32 + 20 {
            return Err(Error::SnapshotTooShort { bytes: self.total });
        }
        if self.head[16..20] != [0xED, 0xDA, 0x0C, 0xED] {
            return Err(Error::NotBbolt);
        }
        let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let want = hex(&self.tail);
        let got = hex(self.digest.finish().as_ref());
        if got != want {
            return Err(Error::SnapshotDamaged { got, want });
        }
        Ok(self.total - 32)
    }
}

/// Checks a snapshot as etcd sends it, whole: see [`SnapshotSum`]. Returns the database's size.
pub fn verify_snapshot(bytes: &[u8]) -> std::result::Result<usize, Error> {
    let mut sum = SnapshotSum::new();
    sum.push(bytes);
    sum.finish().map(|n| n as usize)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    /// Decodes `body` fed in the pieces `cuts` makes (offsets), checked as it goes.
    fn decode_in_pieces(
        body: &[u8],
        cuts: &[usize],
        limit: u64,
    ) -> std::result::Result<(Vec<u8>, u64), String> {
        decode_typed(body, cuts, limit).map_err(|e| e.to_string())
    }

    fn decode_typed(
        body: &[u8],
        cuts: &[usize],
        limit: u64,
    ) -> std::result::Result<(Vec<u8>, u64), Error> {
        let mut got = Vec::new();
        let mut sum = SnapshotSum::new();
        let mut d = SnapshotDecoder::new(limit);
        let mut at = 0;
        for &cut in cuts.iter().chain([body.len()].iter()) {
            let cut = cut.clamp(at, body.len());
            d.feed(&body[at..cut], &mut |b| {
                got.extend_from_slice(b);
                sum.push(b);
                Ok(())
            })?;
            at = cut;
        }
        d.finish()?;
        let db = sum.finish()?;
        Ok((got, db))
    }

    /// [`verify_snapshot`], its error as the text it prints.
    fn verify_text(bytes: &[u8]) -> std::result::Result<usize, String> {
        verify_snapshot(bytes).map_err(|e| e.to_string())
    }

    #[test]
    fn the_gateway_stream_decodes_the_same_however_it_is_split() {
        let snap = fake_snapshot();
        let body = gateway_answer(&snap, 5000);
        let bytes = body.as_bytes();
        let whole = decode_in_pieces(bytes, &[], u64::MAX).unwrap();
        assert_eq!(whole, (snap.clone(), 16384));
        // Where the awkward places are: inside `"blob":"`, inside a base64 quantum of a blob
        // (offset not a multiple of 4 from its start), on the padding, on the newline between
        // two objects, between `}` and `}`.
        let blob = body.find("\"blob\":\"").unwrap() + 8;
        let second = body[1..].find('{').unwrap() + 1;
        let second = body[second..].find("\n{").unwrap() + second;
        let pad = body.find("=\"").unwrap();
        let braces = body.find("}}").unwrap() + 1;
        let awkward = [
            vec![3],
            vec![blob - 2, blob + 1, blob + 2, blob + 3],
            vec![blob + 5, blob + 6, blob + 4097],
            vec![pad, pad + 1],
            vec![second, second + 1],
            vec![braces],
            (0..bytes.len()).step_by(7).collect(),
            (0..bytes.len()).collect(),
        ];
        for cuts in &awkward {
            let got = decode_in_pieces(bytes, cuts, u64::MAX);
            assert_eq!(
                got.as_ref().map(|g| g.1),
                Ok(16384),
                "cut at {:?}",
                &cuts[..cuts.len().min(8)]
            );
            assert_eq!(got.unwrap().0, snap);
        }
        // Objects back to back, or with other whitespace, are the same stream.
        let packed = body.replace('\n', "");
        assert_eq!(
            decode_in_pieces(packed.as_bytes(), &[100, 101], u64::MAX)
                .unwrap()
                .0,
            snap
        );
        let spaced = body.replace('\n', "\r\n \t");
        assert_eq!(
            decode_in_pieces(spaced.as_bytes(), &[9999], u64::MAX)
                .unwrap()
                .0,
            snap
        );
        // Braces and escaped quotes inside strings do not end an object.
        let odd = format!(
            "{{\"result\":{{\"note\":\"}}\\\"{{\",\"blob\":\"\"}}}}{}",
            body
        );
        assert_eq!(
            decode_in_pieces(odd.as_bytes(), &[12, 13], u64::MAX)
                .unwrap()
                .0,
            snap
        );
    }

    #[test]
    fn the_gateway_stream_and_the_snapshot_are_checked() {
        let snap = fake_snapshot();
        let body = gateway_answer(&snap, 32 * 1024);
        let (got, db) = decode_in_pieces(body.as_bytes(), &[], u64::MAX).unwrap();
        assert_eq!((got.as_slice(), db), (snap.as_slice(), 16384));
        assert_eq!(verify_text(&snap), Ok(16384));
        let first = body.lines().next().unwrap();
        let failed = format!(
            "{first}\n{{\"error\":{{\"grpc_code\":14,\"message\":\"transport is closing\"}}}}\n"
        );
        let err = decode_in_pieces(failed.as_bytes(), &[first.len() + 3], u64::MAX).unwrap_err();
        assert!(
            err.contains("after 1 message(s): transport is closing"),
            "{err}"
        );
        assert!(decode_in_pieces(b"", &[], u64::MAX)
            .unwrap_err()
            .contains("no snapshot message"));
        let cut = decode_in_pieces(&body.as_bytes()[..body.len() - 10], &[], u64::MAX).unwrap_err();
        assert!(cut.contains("ends inside message 2"), "{cut}");
        let err = decode_in_pieces(b"HTTP/1.1 200", &[], u64::MAX).unwrap_err();
        assert!(err.contains("where a JSON object should start"), "{err}");
        let bad = body.replacen("\"blob\":\"", "\"blob\":\"*", 1);
        assert!(decode_in_pieces(bad.as_bytes(), &[], u64::MAX)
            .unwrap_err()
            .contains("message 1 has a blob that is not base64"));
        // Without the last message, the last 32 bytes of the database pass for the sum.
        let short = body.lines().take(1).collect::<String>();
        assert!(decode_in_pieces(short.as_bytes(), &[], u64::MAX)
            .unwrap_err()
            .contains("damaged"));
        let mut damaged = snap.clone();
        damaged[100] = 8;
        assert!(verify_text(&damaged).unwrap_err().contains("damaged"));
        let mut not_bolt = snap.clone();
        not_bolt[16] = 0;
        assert!(verify_text(&not_bolt).unwrap_err().contains("bbolt"));
        assert!(verify_text(&snap[..40]).unwrap_err().contains("too short"));
        // The limit: refused as soon as etcd announces more (the first of four messages here).
        let four = gateway_answer(&snap, 5000);
        let mut seen = 0;
        let mut d = SnapshotDecoder::new(10_000);
        let err = d
            .feed(four.as_bytes(), &mut |b| {
                seen += b.len();
                Ok(())
            })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("larger than the 10000 bytes") && err.contains("16384 bytes announced"),
            "{err}"
        );
        assert_eq!(seen, 0, "nothing handed on once refused");
        // Without remaining_bytes, once the bytes pass it.
        let quiet = gateway_answer(&snap, 5000).replace(",\"remaining_bytes\":", ",\"x\":");
        let err = decode_in_pieces(quiet.as_bytes(), &[], 10_000).unwrap_err();
        assert!(err.contains("larger than the 10000 bytes"), "{err}");
        // One message may not grow without bound.
        let endless = format!("{{\"result\":{{\"blob\":\"{}", "A".repeat(MAX_MESSAGE));
        let err = decode_in_pieces(endless.as_bytes(), &[1000], u64::MAX).unwrap_err();
        assert!(err.contains("longer than"), "{err}");
        // The sink's failure stops the stream.
        let mut d = SnapshotDecoder::new(u64::MAX);
        let err = d
            .feed(body.as_bytes(), &mut |_| {
                Err(Error::Fault("disk full".into()))
            })
            .unwrap_err()
            .to_string();
        assert_eq!(err, "disk full");
    }
}
