//! The HTTP request handling behind the socket: any bytes from a client, fed
//! to the daemon's real connection handler and router (with a store in a
//! temporary directory). Whatever arrives, nothing panics, and the answer
//! is HTTP or nothing.

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tether_api::types::Mode;
use tetherd::config::{Config, Options};
use tetherd::server::{App, serve_one};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct World {
    runtime: tokio::runtime::Runtime,
    app: Arc<App>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("tether-fuzz-http-{}", std::process::id()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut config = Config::default();
        config.limits.header_timeout_secs = 1;
        config.limits.body_timeout_secs = 1;
        let options = Options {
            mode: Mode::User,
            socket: dir.join("s"),
            state_dir: dir.join("state"),
            config: config.clone(),
            config_path: None,
        };
        let store = tetherd::store::Store::open(&options.state_dir).expect("store");
        let audit = tetherd::audit::Audit::new(&options.state_dir, &config.audit);
        let uid = tetherd::sys::getuid();
        let app = runtime.block_on(async {
            let app = App::new(options, store, audit, uid);
            app.open_trail().await.expect("audit trail");
            app
        });
        World { runtime, app }
    })
}

fuzz_target!(|data: &[u8]| {
    let world = world();
    world.runtime.block_on(async {
        let (server, mut client) = tokio::net::UnixStream::pair().expect("pair");
        let served = tokio::spawn(serve_one(world.app.clone(), server));
        let _ = client.write_all(data).await;
        let _ = client.shutdown().await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), client.read_to_end(&mut answer)).await;
        if !answer.is_empty() {
            assert!(answer.starts_with(b"HTTP/1."), "not HTTP: {:?}", &answer[..answer.len().min(40)]);
        }
        drop(client);
        let _ = tokio::time::timeout(Duration::from_secs(3), served).await;
    });
});
