//! The read side of a session: how many requests it reads ahead of their answers, and the pause
//! while its client leaves replies unread.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use bytes::BytesMut;
use futures_util::{Stream, StreamExt};

use super::outbox::{OutboxHandle, REPLY_BACKLOG_HIGH, REPLY_BACKLOG_LOW, REPLY_STALL};
use crate::config::Limits;

/// One frame read from the client, or why reading stopped.
pub type Frame = Result<BytesMut, std::io::Error>;

/// Requests read but not yet answered, shared with the read loop so it can pause.
#[derive(Debug, Default)]
pub struct Inflight {
    n: AtomicUsize,
    done: tokio::sync::Notify,
}

impl Inflight {
    pub fn add(&self) {
        self.n.fetch_add(1, Relaxed);
    }

    pub fn finish(&self) {
        self.n.fetch_sub(1, Relaxed);
        self.done.notify_one();
    }

    /// Waits until fewer than `cap` requests are in flight.
    async fn below(&self, cap: usize) {
        loop {
            let wake = self.done.notified();
            if self.n.load(Relaxed) < cap {
                return;
            }
            wake.await;
        }
    }
}

/// The request stream, paused while the client leaves too many replies unread.
///
/// A client that sends requests and never reads the answers would otherwise make its reply
/// queue grow without bound. Only reading stops: notifications keep flowing into the outbox,
/// where they stay bounded (they collapse into a resync). A client that stays stalled past
/// [`REPLY_STALL`] gets its session closed.
pub fn paced<S>(
    frames: S,
    out: OutboxHandle,
    inflight: Arc<Inflight>,
    limits: Arc<Limits>,
) -> impl Stream<Item = Frame>
where
    S: Stream<Item = Frame> + Unpin + 'static,
{
    let state = Some((frames, out, inflight, limits));
    futures_util::stream::unfold(state, |state| async move {
        let (mut frames, out, inflight, limits) = state?;
        // At most `max-inflight` requests read ahead of their answers.
        inflight.below(limits.load().max_inflight).await;
        if out.reply_backlog() > REPLY_BACKLOG_HIGH {
            let drained = out.clone().drained_to(REPLY_BACKLOG_LOW);
            if tokio::time::timeout(REPLY_STALL, drained).await.is_err() {
                let why = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("client left its replies unread for {REPLY_STALL:?}"),
                );
                return Some((Err(why), None));
            }
        }
        let frame = frames.next().await?;
        Some((frame, Some((frames, out, inflight, limits))))
    })
}
