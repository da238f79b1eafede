//! A transaction start cut short (a client hanging up, a request deadline)
//! must not leave the database locked: later writers still get through.

use std::future::Future;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use postern_testkit::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_cut_short_while_starting_leave_the_database_writable() {
    let (_db, store) = TestDb::store().await;
    // Poll `begin` a few times, give the database time to run the `BEGIN`,
    // then drop it before its answer is read: what a request dropped
    // mid-start does.
    for polls in 1..=4 {
        let mut begin = Box::pin(store.begin());
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..polls {
            if let Poll::Ready(tx) = begin.as_mut().poll(&mut cx) {
                drop(tx);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(begin);
    }
    // Every later writer still starts and commits within moments.
    for _ in 0..5 {
        let tx = tokio::time::timeout(Duration::from_secs(5), store.begin())
            .await
            .expect("a writer is not locked out")
            .expect("a transaction");
        tx.commit().await.expect("commit");
    }
}
