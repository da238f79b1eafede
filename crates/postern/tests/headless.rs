mod support;

use support::*;

#[tokio::test]
async fn stub() {
    let _ = spawn_app().await;
}
