//! card-sign's signing engine: the threads of a stream, not what they
//! check. Two pieces:
//!
//! - an ordered parallel map: a reader thread hands blocks to `--jobs`
//!   signing threads, each with its own session, which take them in
//!   batches; their outcomes are put back in input order (`InOrder`);
//! - a group commit: each block, verified, joins a group whose audit
//!   lines a committer thread makes durable with one fsync before it
//!   writes the group (`GroupCommit`).
//!
//! What a block must pass and how the token signs it is main.rs's `start`;
//! how a signature is verified and assembled, its `Pending::finish`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use cardca::audit::{self, Event};
use cardca::session::KeySession;
use cardca::sign::Signer;
use cardca::{io, Error, Result};

/// A block signed and verified: its PEM label and DER.
pub type Signed = (&'static str, Vec<u8>);

/// What signing one block gives: the block signed (or why not), and its
/// audit event (with a log).
pub type Started<P> = (Result<P>, Option<Event>);

/// What a signing thread hands the verifier: a block's place in the
/// stream and what signing it gave.
pub type Outcome<P> = (usize, Result<P>, Option<Event>);

/// Most blocks a signing thread takes from the reader at once, and signs
/// before it hands their results on together. Handing over one block at a
/// time woke a sleeping thread per block (a futex call and a context
/// switch on each side): on a fast key that was a quarter of the signing
/// thread's time, which is the stream's bottleneck. A thread takes only
/// what is already waiting, so a lone block is not held back.
pub const SIGN_BATCH: usize = 16;

/// The batch with `--db`: each batch is cleared with the database before
/// it is signed (a lock, a read of what index.txt and reserved.txt grew
/// by, one append and one fdatasync, ~0.35 ms here), on the signing
/// thread's path. At 16 blocks that was 16 to 29% of a P-256 stream's
/// rate; at 128 it is a few percent, and a lone block still goes alone.
pub const DB_BATCH: usize = 128;

/// How long a signing thread waits for a block before it looks whether
/// the stream has ended.
const TAKE_WAIT: Duration = Duration::from_millis(50);

/// Largest group of signatures logged with one fsync: bounds memory.
const MAX_GROUP: usize = 1024;

/// How long a group waits for more signatures before its fsync. An fsync
/// here takes ~0.1 ms, less than one RSA signature, so without a wait
/// nearly every signature got its own (measured: 1,904 fsyncs for 2,000
/// RSA signatures, 11% of card-sign's rate under load); waiting this long
/// at most makes groups of a few to a few dozen signatures, and adds at
/// most this much to a certificate's way out.
const GROUP_WAIT: Duration = Duration::from_millis(5);

/// A reader thread hands blocks to `jobs` signing threads, each with its
/// own session, which check a batch of blocks and have the token sign
/// them (`sign`, which stops at the batch's first failure: the blocks
/// after it come after it in the stream, which ends there); this thread verifies each signature (`finish`) in input
/// order, and a committer thread logs and writes them. So even with one
/// session the token signs the next block while the last one is
/// verified. On the first failure, what came before it is written and
/// nothing after.
pub fn sign_stream<P: Send + 'static>(
    ks: &KeySession,
    jobs: usize,
    batch: usize,
    first: io::Object,
    out: &mut io::Writer,
    sign: impl Fn(&Signer, Vec<(usize, io::Object)>) -> Vec<Outcome<P>> + Sync,
    finish: impl Fn(P) -> Result<Signed>,
) -> Result<()> {
    // Blocks read ahead: a batch per signing thread.
    let (job_tx, job_rx) = mpsc::sync_channel::<(usize, io::Object)>(jobs * batch);
    let (result_tx, result_rx) = mpsc::channel::<Vec<Outcome<P>>>();
    spawn_reader(first, job_tx, result_tx.clone());
    let queue = Queue { blocks: Mutex::new(job_rx), stop: AtomicBool::new(false), batch };
    let sessions: Vec<_> = (0..jobs).map(|_| ks.fork()).collect::<Result<_>>()?;
    let spec = ks.signer_spec()?;
    let module = ks.module();
    std::thread::scope(|scope| {
        for session in sessions {
            let (queue, sign, results, spec) = (&queue, &sign, result_tx.clone(), spec.clone());
            scope.spawn(move || {
                let signer = match spec.on(&session) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = results.send(vec![(0, Err(e), None)]);
                        return;
                    }
                };
                sign_batches(queue, &results, |batch| sign(&signer, batch));
                // C_CloseSession under the token lock, like every change.
                let _lock = cardca::lock::lock_module(module);
                drop(signer);
                drop(session);
            });
        }
        // The signing threads and the reader hold the other senders: the
        // results end when they all have.
        drop(result_tx);
        let (group_tx, group_rx) = mpsc::sync_channel::<Group>(2);
        let committer = scope.spawn(move || -> Result<()> {
            for mut group in group_rx {
                group.commit(out)?;
            }
            Ok(())
        });
        let mut commit = GroupCommit { group: Group::default(), committer: group_tx };
        let verified = verify_in_order(&result_rx, &finish, &mut commit);
        // The committer ends when its channel closes.
        drop(commit);
        let committed = committer.join().unwrap_or_else(|_| Err(Error::new("the output thread panicked")));
        let written = match (verified, committed) {
            (Ok(()), c) => c,
            (Err(e), Ok(())) => Err(e),
            (Err(e), Err(a)) if a.kind() == cardca::error::Kind::BrokenPipe => Err(e),
            (Err(e), Err(a)) => Err(Error::new(format!("{e}; and then: {a}")).with_ckr_of(&e)),
        };
        queue.stop.store(true, Ordering::Relaxed);
        written
    })
}

/// The reader: hands each block of stdin, numbered from `first`'s 0, to
/// the signing threads; a read error goes straight to the verifier, in its
/// place. Not scoped: it may sit in a read of stdin that never ends when
/// a failure ends the run, and must not keep the process alive then.
fn spawn_reader<P: Send + 'static>(
    first: io::Object,
    blocks: mpsc::SyncSender<(usize, io::Object)>,
    failures: mpsc::Sender<Vec<Outcome<P>>>,
) {
    std::thread::spawn(move || {
        // The first block was read already: count on from it.
        let rest = io::stdin().after(1);
        for (seq, object) in std::iter::once(Ok(first)).chain(rest).enumerate() {
            let sent = match object {
                Ok(o) => blocks.send((seq, o)).is_ok(),
                Err(e) => {
                    let _ = failures.send(vec![(seq, Err(e), None)]);
                    false
                }
            };
            if !sent {
                break;
            }
        }
    });
}

/// The blocks the reader has handed over, shared by the signing threads.
struct Queue {
    blocks: Mutex<mpsc::Receiver<(usize, io::Object)>>,
    /// Set when the reader is done (and the queue empty) or the stream
    /// has ended: the signing threads finish what they took and stop.
    stop: AtomicBool,
    /// Most blocks a thread takes at once.
    batch: usize,
}

impl Queue {
    /// Waits up to TAKE_WAIT for one block, then takes what else is
    /// already waiting, up to a batch in all. False when nothing came.
    fn take(&self, batch: &mut Vec<(usize, io::Object)>) -> bool {
        let taken = self.blocks.lock().map_err(|_| ()).and_then(|rx| {
            let first = rx.recv_timeout(TAKE_WAIT).map_err(|e| {
                if e == mpsc::RecvTimeoutError::Disconnected {
                    self.stop.store(true, Ordering::Relaxed)
                }
            })?;
            batch.push(first);
            batch.extend(std::iter::from_fn(|| rx.try_recv().ok()).take(self.batch - 1));
            Ok(())
        });
        taken.is_ok()
    }
}

/// One signing thread's loop: a batch at a time, its outcomes handed on
/// together. The whole batch is signed even when `stop` is set (it also
/// means "the reader is done", and what was taken must still be signed).
fn sign_batches<P>(
    queue: &Queue,
    results: &mpsc::Sender<Vec<Outcome<P>>>,
    mut sign: impl FnMut(Vec<(usize, io::Object)>) -> Vec<Outcome<P>>,
) {
    let mut batch = Vec::with_capacity(queue.batch);
    while !queue.stop.load(Ordering::Relaxed) {
        if !queue.take(&mut batch) {
            continue;
        }
        let outcomes = sign(std::mem::take(&mut batch));
        if results.send(outcomes).is_err() {
            break;
        }
    }
}

/// Outcomes put back in input order: each waits until every block before
/// it has come.
struct InOrder<P> {
    waiting: BTreeMap<usize, Started<P>>,
    next: usize,
}

impl<P> InOrder<P> {
    fn add(&mut self, outcomes: Vec<Outcome<P>>) {
        for (seq, result, event) in outcomes {
            self.waiting.insert(seq, (result, event));
        }
    }

    /// The next block in input order, if it has come.
    fn pop(&mut self) -> Option<Started<P>> {
        let next = self.waiting.remove(&self.next)?;
        self.next += 1;
        Some(next)
    }
}

/// Verifies the signed blocks in input order into groups. With a log, a
/// group is what has been verified within GROUP_WAIT of its first
/// signature (or MAX_GROUP of them); the committer thread logs each group
/// with one fsync and then writes it, while this thread verifies the next
/// group (pipelined group commit: the fsync is off the verifying thread's
/// path). Without a log, what has been verified goes out as soon as
/// nothing more is ready to verify. Ok also when the committer stopped:
/// its error comes from joining it.
fn verify_in_order<P>(
    results: &mpsc::Receiver<Vec<Outcome<P>>>,
    finish: impl Fn(P) -> Result<Signed>,
    commit: &mut GroupCommit,
) -> Result<()> {
    let grouped = audit::enabled();
    let mut order = InOrder { waiting: BTreeMap::new(), next: 0 };
    loop {
        let outcomes = if commit.group.is_empty() {
            match results.recv() {
                Ok(item) => item,
                Err(_) => return Ok(()),
            }
        } else {
            match results.recv_timeout(commit.wait_left()) {
                Ok(item) => item,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if !commit.hand_over() {
                        return Ok(());
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    commit.hand_over();
                    return Ok(());
                }
            }
        };
        order.add(outcomes);
        while let Some((result, event)) = order.pop() {
            match result.and_then(&finish) {
                Ok(signed) => commit.push(signed, event),
                Err(e) => {
                    // What came before is logged and written, the failure
                    // logged, and nothing after.
                    commit.group.events.extend(event.map(|ev| ev.failed(&e)));
                    commit.hand_over();
                    return Err(e);
                }
            }
            if commit.is_due() && !commit.hand_over() {
                return Ok(());
            }
        }
        // Without a log, what is ready goes out now, together.
        if !grouped && !commit.group.is_empty() && !commit.hand_over() {
            return Ok(());
        }
    }
}

/// Group commit: the signed objects waiting for their audit lines. The
/// lines of the whole group are appended and made durable with one fsync,
/// and only then is the group written: nothing leaves card-sign unlogged,
/// and the log costs one fsync per group, not per signature.
#[derive(Default)]
struct Group {
    out: Vec<Signed>,
    events: Vec<Event>,
    /// When the first of the group was ready.
    started: Option<Instant>,
}

impl Group {
    fn is_empty(&self) -> bool {
        self.out.is_empty() && self.events.is_empty()
    }

    /// The committer's part: log the group, then write it.
    fn commit(&mut self, out: &mut io::Writer) -> Result<()> {
        audit::record_all(&self.events)?;
        self.events.clear();
        for (label, der) in self.out.drain(..) {
            out.write(label, &der)?;
        }
        Ok(())
    }
}

/// The verifier's side of the group commit: the group being filled, and
/// the channel to the committer thread.
struct GroupCommit {
    group: Group,
    committer: mpsc::SyncSender<Group>,
}

impl GroupCommit {
    fn push(&mut self, signed: Signed, event: Option<Event>) {
        self.group.out.push(signed);
        self.group.events.extend(event);
        self.group.started.get_or_insert_with(Instant::now);
    }

    /// Whether the group has waited GROUP_WAIT or is full.
    fn is_due(&self) -> bool {
        let due = self.group.started.is_some_and(|t| t.elapsed() >= GROUP_WAIT);
        due || self.group.out.len() >= MAX_GROUP
    }

    /// How much longer the group may wait for more.
    fn wait_left(&self) -> Duration {
        let waited = self.group.started.map_or(GROUP_WAIT, |t| t.elapsed());
        GROUP_WAIT.saturating_sub(waited)
    }

    /// Hands the group to the committer; false when the committer has
    /// stopped (its error comes from joining it).
    fn hand_over(&mut self) -> bool {
        self.committer.send(std::mem::take(&mut self.group)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(index: usize) -> io::Object {
        io::Object { label: None, der: vec![0x30, 0x00], index }
    }

    #[test]
    fn outcomes_come_out_in_input_order() {
        let mut order = InOrder::<usize> { waiting: BTreeMap::new(), next: 0 };
        order.add(vec![(2, Ok(2), None), (1, Ok(1), None)]);
        // Block 0 has not come: nothing after it may go out.
        assert!(order.pop().is_none());
        order.add(vec![(0, Ok(0), None)]);
        let out: Vec<usize> = std::iter::from_fn(|| order.pop()).map(|(r, _)| r.expect("ok")).collect();
        assert_eq!(out, [0, 1, 2]);
        assert!(order.pop().is_none());
    }

    #[test]
    fn a_thread_takes_at_most_a_batch_of_what_is_waiting() {
        let (tx, rx) = mpsc::sync_channel(64);
        for seq in 0..SIGN_BATCH + 3 {
            tx.send((seq, block(seq + 1))).expect("queued");
        }
        let queue = Queue { blocks: Mutex::new(rx), stop: AtomicBool::new(false), batch: SIGN_BATCH };
        let mut batch = Vec::new();
        assert!(queue.take(&mut batch));
        assert_eq!(batch.len(), SIGN_BATCH);
        batch.clear();
        assert!(queue.take(&mut batch));
        assert_eq!(batch.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), [16, 17, 18]);
        // The reader is done and the queue empty: the threads stop.
        drop(tx);
        batch.clear();
        assert!(!queue.take(&mut batch) && batch.is_empty());
        assert!(queue.stop.load(Ordering::Relaxed));
    }

    #[test]
    fn a_group_is_due_when_full_or_waited() {
        let (tx, _rx) = mpsc::sync_channel(2);
        let mut commit = GroupCommit { group: Group::default(), committer: tx };
        assert!(!commit.is_due() && commit.group.is_empty());
        assert_eq!(commit.wait_left(), Duration::ZERO);
        commit.push(("CERTIFICATE", vec![1]), None);
        assert!(commit.wait_left() <= GROUP_WAIT);
        for _ in 1..MAX_GROUP {
            commit.push(("CERTIFICATE", vec![1]), None);
        }
        assert!(commit.is_due());
        assert!(commit.hand_over() && commit.group.is_empty());
    }
}
