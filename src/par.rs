//! Work on all cores with results in input order: mapping a slice or a stream (the inventory
//! decodes files and checks signatures this way) and writing numbered pieces of output in order
//! while later ones are still being made (the JSON report). Scoped std threads, one per core;
//! no pool survives the call.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

/// How many threads to decode and verify on: the cores this process may use.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Items go to the threads in batches: enough to make the hand-over cheap, few enough that a
/// busy core does not hold the others up.
const BATCH: usize = 16;

/// `items.map(f)` on all cores, in order.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let batches = items.len().div_ceil(BATCH);
    let threads = threads().min(batches);
    if threads <= 1 {
        return items.iter().enumerate().map(|(i, t)| f(i, t)).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let b = next.fetch_add(1, Ordering::Relaxed);
            if b >= batches {
                return done;
            }
            let start = b * BATCH;
            let end = (start + BATCH).min(items.len());
            let out: Vec<R> = (start..end).map(|i| f(i, &items[i])).collect();
            done.push((b, out));
        }
    };
    let done = std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut done = work();
        for h in helpers {
            done.extend(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        done
    });
    in_order(done, items.len())
}

/// `items.map(f)` on all cores, each result handed to `consume` in order. One helper per core
/// maps; this thread first only pulls (a directory walk: mostly time in the kernel), then
/// consumes the results in order while the helpers map what is left, mapping a batch itself
/// only when the next result is not made yet. Pulling is the critical path while it lasts:
/// when this thread also mapped a batch now and then, the helpers sat waiting for the walk (on
/// two cores the decoding of a fleet used 1.3 of them); afterwards, consuming (the inventory's
/// serial merge) overlaps the mapping instead of following it.
pub fn par_stream<T: Send, R: Send>(
    items: impl Iterator<Item = T>,
    f: impl Fn(T) -> R + Sync,
    mut consume: impl FnMut(R),
) {
    let threads = threads();
    if threads <= 1 {
        items.map(f).for_each(consume);
        return;
    }
    let queue = Queue {
        batches: Mutex::new((VecDeque::new(), false)),
        ready: Condvar::new(),
    };
    let results = Mutex::new(Made {
        batches: BTreeMap::new(),
        panicked: false,
    });
    let made = Condvar::new();
    let lock = || results.lock().unwrap_or_else(PoisonError::into_inner);
    let run = |(b, batch): (usize, Vec<T>)| {
        let out = batch.into_iter().map(&f).collect::<Vec<R>>();
        lock().batches.insert(b, out);
        made.notify_all();
    };
    let work = || {
        crate::sys::alloc::reserve_arena();
        while let Some(batch) = queue.pop() {
            // A panic is handed in too, so the consumer never waits for the batch; the panic
            // itself resumes on this thread's join.
            if let Err(panic) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(batch)))
            {
                lock().panicked = true;
                made.notify_all();
                std::panic::resume_unwind(panic);
            }
        }
    };
    std::thread::scope(|s| {
        let helpers: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
        let batches = {
            // Closes the queue however the pulling ends, so that no helper waits forever.
            let _close = Closer(&queue);
            let mut b = 0;
            let mut batch = Vec::with_capacity(BATCH);
            for item in items {
                batch.push(item);
                if batch.len() < BATCH {
                    continue;
                }
                queue.push(b, std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
                b += 1;
            }
            if !batch.is_empty() {
                queue.push(b, batch);
                b += 1;
            }
            b
        };
        let mut next = 0;
        while next < batches {
            let mut m = lock();
            if m.panicked {
                break;
            }
            if let Some(out) = m.batches.remove(&next) {
                drop(m);
                out.into_iter().for_each(&mut consume);
                next += 1;
                continue;
            }
            drop(m);
            if let Some(batch) = queue.try_pop() {
                run(batch);
                continue;
            }
            let m = lock();
            if !m.panicked && !m.batches.contains_key(&next) {
                drop(made.wait(m).unwrap_or_else(PoisonError::into_inner));
            }
        }
        for h in helpers {
            h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        }
    });
}

/// Results of numbered batches not yet consumed, and whether a helper panicked.
struct Made<R> {
    batches: BTreeMap<usize, Vec<R>>,
    panicked: bool,
}

/// Numbered batches of work, and whether more may come.
struct Queue<T> {
    batches: Mutex<Batches<T>>,
    ready: Condvar,
}

type Batches<T> = (VecDeque<(usize, Vec<T>)>, bool);

impl<T> Queue<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Batches<T>> {
        self.batches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, b: usize, batch: Vec<T>) {
        self.lock().0.push_back((b, batch));
        self.ready.notify_one();
    }

    /// The next batch if one is waiting.
    fn try_pop(&self) -> Option<(usize, Vec<T>)> {
        self.lock().0.pop_front()
    }

    /// The next batch, waiting for one while more may come.
    fn pop(&self) -> Option<(usize, Vec<T>)> {
        let mut q = self.lock();
        loop {
            if let Some(batch) = q.0.pop_front() {
                return Some(batch);
            }
            if q.1 {
                return None;
            }
            q = self.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

struct Closer<'a, T>(&'a Queue<T>);

impl<T> Drop for Closer<'_, T> {
    fn drop(&mut self) {
        self.0.lock().1 = true;
        self.0.ready.notify_all();
    }
}

/// The results of numbered batches, in batch order.
fn in_order<R>(mut done: Vec<(usize, Vec<R>)>, total: usize) -> Vec<R> {
    done.sort_unstable_by_key(|(b, _)| *b);
    let mut out = Vec::with_capacity(total);
    for (_, batch) in done {
        out.extend(batch);
    }
    out
}

/// Writes `items` to `out` in order, in pieces of `chunk` items that `render(first_index,
/// items, buffer)` makes on all cores. This thread writes each piece as soon as it and every
/// piece before it are made, and renders pieces itself meanwhile; no thread runs more than a few
/// pieces ahead of the writer, so memory holds a few pieces, never the whole output. The first
/// error (rendering or writing) stops every thread and is returned.
pub fn write_ordered<T: Sync>(
    out: &mut dyn Write,
    items: &[T],
    chunk: usize,
    render: impl Fn(usize, &[T], &mut Vec<u8>) -> io::Result<()> + Sync,
) -> io::Result<()> {
    let chunk = chunk.max(1);
    let pieces = items.len().div_ceil(chunk);
    let piece = |p: usize| -> io::Result<Vec<u8>> {
        let start = p * chunk;
        let mut buf = Vec::new();
        render(
            start,
            &items[start..(start + chunk).min(items.len())],
            &mut buf,
        )?;
        Ok(buf)
    };
    let threads = threads().min(pieces);
    if threads <= 1 {
        for p in 0..pieces {
            out.write_all(&piece(p)?)?;
        }
        return Ok(());
    }
    let ahead = 2 * threads;
    let state = Mutex::new(Pieces {
        next: 0,
        written: 0,
        made: BTreeMap::new(),
        stop: false,
    });
    let changed = Condvar::new();
    let lock = || state.lock().unwrap_or_else(PoisonError::into_inner);
    let claim = |s: &mut Pieces| {
        let free = !s.stop && s.next < pieces && s.next < s.written + ahead;
        free.then(|| {
            s.next += 1;
            s.next - 1
        })
    };
    let made = |p: usize, r: io::Result<Vec<u8>>| {
        lock().made.insert(p, r);
        changed.notify_all();
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads)
            .map(|_| {
                scope.spawn(|| loop {
                    let p = {
                        let mut s = lock();
                        loop {
                            if s.stop || s.next >= pieces {
                                return None;
                            }
                            if let Some(p) = claim(&mut s) {
                                break p;
                            }
                            s = changed.wait(s).unwrap_or_else(PoisonError::into_inner);
                        }
                    };
                    // A panic still hands in the piece (as an error), so the writer never
                    // waits for it; the panic itself resumes on this thread's join.
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| piece(p))) {
                        Ok(r) => made(p, r),
                        Err(panic) => {
                            made(p, Err(io::Error::other("a rendering thread panicked")));
                            return Some(panic);
                        }
                    }
                })
            })
            .collect();
        let result = (|| loop {
            let mut s = lock();
            if s.written == pieces {
                return Ok(());
            }
            let due = s.written;
            if let Some(r) = s.made.remove(&due) {
                drop(s);
                out.write_all(&r?)?;
                lock().written += 1;
                changed.notify_all();
            } else if let Some(p) = claim(&mut s) {
                drop(s);
                made(p, piece(p));
            } else {
                drop(changed.wait(s).unwrap_or_else(PoisonError::into_inner));
            }
        })();
        lock().stop = true;
        changed.notify_all();
        for h in helpers {
            if let Some(panic) = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)) {
                std::panic::resume_unwind(panic);
            }
        }
        result
    })
}

/// What [`write_ordered`] shares between its threads.
struct Pieces {
    /// The next piece to claim.
    next: usize,
    /// How many pieces are written.
    written: usize,
    /// Pieces made and not yet written.
    made: BTreeMap<usize, io::Result<Vec<u8>>>,
    /// An error happened: claim nothing more.
    stop: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn par_maps_keep_order() {
        let items: Vec<usize> = (0..1000).collect();
        let doubled: Vec<usize> = items.iter().map(|i| i * 2).collect();
        assert_eq!(
            par_map(&items, |i, &x| {
                assert_eq!(i, x);
                x * 2
            }),
            doubled
        );
        let mut streamed = Vec::new();
        par_stream(items.iter().copied(), |x| x * 2, |r| streamed.push(r));
        assert_eq!(streamed, doubled);
        let mut none = Vec::new();
        par_stream(std::iter::empty::<usize>(), |x| x, |r| none.push(r));
        assert!(none.is_empty());
    }

    #[test]
    fn a_panic_while_streaming_reaches_the_caller_instead_of_a_hang() {
        let caught = std::panic::catch_unwind(|| {
            par_stream(
                0..1000usize,
                |x| {
                    assert_ne!(x, 500, "item 500 cannot be mapped");
                    x
                },
                |_| {},
            )
        });
        assert!(caught.is_err());
    }

    #[test]
    fn pieces_are_written_in_order_and_errors_stop_the_writing() {
        let items: Vec<usize> = (0..1000).collect();
        let render = |start: usize, chunk: &[usize], buf: &mut Vec<u8>| {
            for (k, x) in chunk.iter().enumerate() {
                assert_eq!(start + k, *x);
                write!(buf, "{x},")?;
            }
            Ok(())
        };
        let mut out = Vec::new();
        write_ordered(&mut out, &items, 7, render).unwrap();
        let expected: String = items.iter().map(|x| format!("{x},")).collect();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        let mut empty = Vec::new();
        write_ordered(&mut empty, &items[..0], 7, render).unwrap();
        assert!(empty.is_empty());

        let failing = |start: usize, _: &[usize], _: &mut Vec<u8>| {
            if start >= 500 {
                Err(io::Error::other("piece 500 cannot be made"))
            } else {
                Ok(())
            }
        };
        let err = write_ordered(&mut Vec::new(), &items, 10, failing).unwrap_err();
        assert_eq!(err.to_string(), "piece 500 cannot be made");

        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let err = write_ordered(&mut Broken, &items, 10, render).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
