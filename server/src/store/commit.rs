//! Group commit: many posts, one transaction, one fsync.
//!
//! Posts enter an unbounded queue. One task takes everything queued (up to
//! [`MAX_BATCH`]), numbers and stores it in a single transaction
//! ([`Store::number_and_store`]: the database is every room's sequencer), and only then
//! hands the batch, in order, with each post's [`Outcome`], to the [`CommitSink`] which
//! acknowledges and delivers. While a commit runs the next batch gathers, so the batch
//! size follows the load: one post at a time when idle, thousands per fsync under
//! pressure. The queue depth is public so that callers refuse work ("busy") instead of
//! letting it grow without bound.
//!
//! A batch the database refuses is retried, with backoff, for up to [`GIVE_UP_AFTER`];
//! then its posts are reported [`Outcome::Failed`] (nothing unstored is ever
//! acknowledged; a failed post that the database did store after all is recognised as a
//! retry when the client sends it again).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use super::sequence::Outcome;
use super::sequence::Post;
use super::Store;
use crate::protocol::Message;
use crate::telemetry::catalog;

/// Most posts stored by one transaction.
pub const MAX_BATCH: usize = 4096;

/// Longest wait between attempts at a batch the database refused.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How long a batch the database keeps refusing is retried before its posts fail.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(10);

/// Receives committed (or failed) batches, in queue order.
pub trait CommitSink: Send + Sync + 'static {
    /// What the poster attached to its message (who to acknowledge).
    type Tag: Send + Sync + 'static;
    /// The batch is through the database: each post with what became of it.
    fn committed(&self, batch: Vec<(Entry<Self::Tag>, Outcome)>);
}

/// One queued post.
#[derive(Debug)]
pub struct Entry<T> {
    /// The message; its `seq` is assigned by the commit.
    pub msg: Message,
    /// Store the text (false: the category keeps no history; numbered only).
    pub persist: bool,
    /// The room's last number delivered here when the post arrived (see
    /// [`super::sequence::Post::seen_up_to`]).
    pub seen_up_to: i64,
    /// A post with the same author and client id was queued here already.
    pub in_flight_retry: bool,
    /// The poster's tag.
    pub tag: T,
}

enum Item<T> {
    Post(Entry<T>),
    Flush(oneshot::Sender<()>),
}

/// The sending side of the group committer. Cloning is shallow.
pub struct Committer<T> {
    tx: mpsc::UnboundedSender<Item<T>>,
    depth: Arc<AtomicUsize>,
}

impl<T> Clone for Committer<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            depth: self.depth.clone(),
        }
    }
}

impl<T: Send + Sync + 'static> Committer<T> {
    /// Start the commit task for `store`, reporting to `sink`. `shared`: other chat
    /// servers commit to the same database (every post is searched for as a retry).
    pub fn start<S: CommitSink<Tag = T>>(store: Store, sink: Arc<S>, shared: bool) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let depth = Arc::new(AtomicUsize::new(0));
        tokio::spawn(run(store, sink, rx, depth.clone(), shared));
        Self { tx, depth }
    }

    /// Queue a post; a session's posts are numbered in the order they are queued.
    /// Returns the entry back if the committer has stopped.
    pub fn push(&self, entry: Entry<T>) -> Result<(), Entry<T>> {
        self.depth.fetch_add(1, Ordering::Relaxed);
        self.tx.send(Item::Post(entry)).map_err(|e| {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            match e.0 {
                Item::Post(entry) => entry,
                Item::Flush(_) => unreachable!("only posts are sent here"),
            }
        })
    }

    /// Posts queued or being committed.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Wait until everything queued before this call is committed and handed on.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Item::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

/// What the storing task hands to the delivering task, in order.
enum Stored<T> {
    Batch(Vec<(Entry<T>, Outcome)>),
    Flushed(Vec<oneshot::Sender<()>>),
}

async fn run<S: CommitSink>(
    store: Store,
    sink: Arc<S>,
    mut rx: mpsc::UnboundedReceiver<Item<S::Tag>>,
    depth: Arc<AtomicUsize>,
    shared: bool,
) {
    // Acknowledging and fanning out batch k runs on its own task while batch k+1 is being
    // stored; one task for each keeps the order.
    let (to_sink, mut stored) = mpsc::unbounded_channel::<Stored<S::Tag>>();
    let queued = depth.clone();
    let deliver = tokio::spawn(async move {
        while let Some(item) = stored.recv().await {
            match item {
                Stored::Batch(batch) => {
                    let n = batch.len();
                    sink.committed(batch);
                    let left = depth.fetch_sub(n, Ordering::Relaxed).saturating_sub(n);
                    metrics::gauge!(catalog::COMMIT_QUEUE_POSTS.name).set(left as f64);
                }
                Stored::Flushed(waiters) => {
                    for done in waiters {
                        let _ = done.send(());
                    }
                }
            }
        }
    });
    let mut batch: Vec<Entry<S::Tag>> = Vec::new();
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Item::Post(e) => batch.push(e),
                Item::Flush(done) => flushes.push(done),
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let n = batch.len();
            // The queue depth, sampled once a batch (what `max_pending_posts` bounds).
            metrics::gauge!(catalog::COMMIT_QUEUE_POSTS.name)
                .set(queued.load(Ordering::Relaxed) as f64);
            let mut taken = std::mem::take(&mut batch);
            let started = std::time::Instant::now();
            let outcomes = store_batch(&store, &mut taken, shared).await;
            // Time spent storing (insert + commit + fsync, with retries): with the batch
            // size, this is what bounds durable posts/s (`chatcap bench server`).
            metrics::histogram!(catalog::COMMIT_SECONDS.name)
                .record(started.elapsed().as_secs_f64());
            metrics::histogram!(catalog::COMMIT_BATCH_POSTS.name).record(n as f64);
            let _ = to_sink.send(Stored::Batch(taken.into_iter().zip(outcomes).collect()));
        }
        if !flushes.is_empty() {
            // A flush resolves once everything queued before it is delivered, not only stored.
            let _ = to_sink.send(Stored::Flushed(std::mem::take(&mut flushes)));
        }
    }
    drop(to_sink);
    let _ = deliver.await;
}

async fn store_batch<T>(store: &Store, batch: &mut [Entry<T>], shared: bool) -> Vec<Outcome> {
    let mut delay = Duration::from_millis(20);
    let started = tokio::time::Instant::now();
    loop {
        let mut posts: Vec<Post> = batch
            .iter_mut()
            .map(|e| Post {
                msg: &mut e.msg,
                persist: e.persist,
                seen_up_to: e.seen_up_to,
                in_flight_retry: e.in_flight_retry,
            })
            .collect();
        match store.number_and_store(&mut posts, shared).await {
            Ok(outcomes) => return outcomes,
            Err(e) => {
                tracing::error!(error = %e, posts = batch.len(), "group commit failed; retrying");
                metrics::counter!(catalog::COMMIT_FAILURES.name).increment(1);
                if started.elapsed() + delay > GIVE_UP_AFTER {
                    tracing::error!(posts = batch.len(), "group commit given up: posts fail");
                    return vec![Outcome::Failed; batch.len()];
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        }
    }
}
