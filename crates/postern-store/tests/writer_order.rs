//! SQLite's one writer is handed out in order, except that
//! [`Store::begin_first`] (the outbox recording deliveries that keep SMTP
//! connections busy) goes ahead of every `begin` caller still queued: it
//! waits for the transaction under way and at most one other.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use postern_store::{Backend, Store};
use postern_testkit::TestDb;

/// Starts a task that takes the writer through `first` or `begin`, notes
/// `name` once it has it and commits at once.
fn writer(
    store: &Store,
    order: &Arc<Mutex<Vec<&'static str>>>,
    name: &'static str,
    first: bool,
) -> tokio::task::JoinHandle<()> {
    let (store, order) = (store.clone(), Arc::clone(order));
    tokio::spawn(async move {
        let tx = if first {
            store.begin_first().await
        } else {
            store.begin().await
        }
        .expect("a transaction");
        order.lock().unwrap().push(name);
        tx.commit().await.expect("commit");
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn begin_first_goes_ahead_of_the_queued_writers() {
    let (_db, store) = TestDb::store().await;
    if store.backend() != Backend::Sqlite {
        // PostgreSQL has no single writer: transactions run side by side.
        return;
    }
    let order = Arc::new(Mutex::new(Vec::new()));
    let held = store.begin().await.expect("the transaction under way");
    // Arrive one after another while `held` keeps the writer.
    let mut tasks = Vec::new();
    for (name, first) in [
        ("next", false),
        ("queued 1", false),
        ("queued 2", false),
        ("first", true),
    ] {
        tasks.push(writer(&store, &order, name, first));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        order.lock().unwrap().is_empty(),
        "nobody writes beside held"
    );
    held.commit().await.expect("commit");
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("every writer gets its turn")
            .expect("no panic");
    }
    assert_eq!(
        *order.lock().unwrap(),
        ["next", "first", "queued 1", "queued 2"],
        "begin_first waits for at most one queued writer"
    );
}
