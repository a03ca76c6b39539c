//! Tests of the real `longlink-chat` binary: configuration file and environment, signals,
//! exit codes, the `token` subcommand.

mod common;

use common::process::*;
use common::*;

async fn stops_cleanly_on(signal: &str, enc: Enc) {
    let mut s = serve(enc, "").await;
    // Clients connected at the time of the signal are closed.
    let mut a = Client::connect(Transport::Tcp, enc, s.tcp).await;
    a.login_uid(1).await;
    a.watch(3).await;
    let mut b = Client::connect(Transport::Ws, enc, s.ws).await;
    b.login_uid(2).await;
    b.watch(3).await;
    a.say(3, "before the signal").await;
    assert_eq!(b.expect_message().await.text, "before the signal");
    assert_eq!(a.expect_message().await.text, "before the signal");

    s.proc.signal(signal);
    let status = s.proc.wait().await;
    assert_eq!(
        status.code(),
        Some(0),
        "{signal}: exit status {status}; stderr:\n{}",
        s.proc.stderr()
    );
    for c in [&mut a, &mut b] {
        loop {
            match c.try_recv(TIMEOUT).await {
                Ok(Reply::Kick(_)) => {}
                Ok(other) => panic!("{c:?}: unexpected {other:?} at shutdown"),
                Err(End::Closed { .. }) => break,
                Err(End::TimedOut) => panic!("{c:?}: still open after the server exited"),
            }
        }
    }
    // Nothing listens any more.
    assert!(
        Client::try_connect(Transport::Tcp, enc, s.tcp)
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_heartbeats_and_exits_0_on_sigterm() {
    bounded(TEST_TIMEOUT, stops_cleanly_on("TERM", Enc::Json)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_protobuf_and_exits_0_on_sigint() {
    bounded(TEST_TIMEOUT, stops_cleanly_on("INT", Enc::Protobuf)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_server_exits_0_on_sigterm() {
    bounded(TEST_TIMEOUT, async {
        let mut s = serve(Enc::Json, "").await;
        s.proc.signal("TERM");
        let status = s.proc.wait().await;
        assert_eq!(status.code(), Some(0), "stderr:\n{}", s.proc.stderr());
    })
    .await;
}

/// Runs the binary with a bad configuration; it must exit non-zero (not serve) and name
/// `needle` on stderr.
async fn expect_config_refused(
    what: &str,
    dir: &TempDir,
    args: &[&str],
    env: &[(&str, &str)],
    needle: &str,
) {
    let mut p = Proc::spawn(dir, args, env);
    let status = p.wait().await;
    let stderr = p.stderr();
    assert!(
        !status.success() && status.code().is_some(),
        "{what}: expected a non-zero exit, got {status}; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains(needle),
        "{what}: stderr does not name {needle:?}:\n{stderr}"
    );
    assert!(p.stdout().is_empty(), "{what}: stdout: {}", p.stdout());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_file_exits_non_zero_naming_the_key() {
    bounded(TEST_TIMEOUT, async {
        let dir = TempDir::new("badconfig");
        // Port 0 everywhere, so a config wrongly accepted binds nothing anyone else uses.
        let ports = "tcp_addr = \"127.0.0.1:0\"\nws_addr = \"127.0.0.1:0\"\n";
        let cases: &[(&str, String, &str)] = &[
            (
                "unknown key",
                format!("[gate]\n{ports}bogus_key = 1\n"),
                "gate.bogus_key",
            ),
            (
                "len_msg_len = 3",
                format!("[gate]\n{ports}len_msg_len = 3\n"),
                "gate.len_msg_len",
            ),
            (
                "len_msg_len = 0",
                format!("[gate]\n{ports}len_msg_len = 0\n"),
                "gate.len_msg_len",
            ),
            (
                "max_conn_num = \"x\"",
                format!("[gate]\n{ports}max_conn_num = \"x\"\n"),
                "gate.max_conn_num",
            ),
            (
                "max_conn_num = -1",
                format!("[gate]\n{ports}max_conn_num = -1\n"),
                "gate.max_conn_num",
            ),
            (
                "max_conn_num = 0",
                format!("[gate]\n{ports}max_conn_num = 0\n"),
                "gate.max_conn_num",
            ),
            (
                "unknown encoding",
                format!("[gate]\n{ports}encoding = \"xml\"\n"),
                "gate.encoding",
            ),
            (
                "unknown section",
                format!("[gate]\n{ports}[nope]\nx = 1\n"),
                "nope",
            ),
            (
                "unknown chat key",
                format!("[gate]\n{ports}[chat]\nsecret = \"s\"\n"),
                "chat.secret",
            ),
            (
                "empty token secret",
                format!("[gate]\n{ports}[chat]\ntoken_secret = \"\"\n"),
                "chat.token_secret",
            ),
            (
                "max_text_len = 0",
                format!("[gate]\n{ports}[chat]\nmax_text_len = 0\n"),
                "chat.max_text_len",
            ),
            (
                "address without a port",
                "[gate]\ntcp_addr = \"localhost\"\nws_addr = \"127.0.0.1:0\"\n".into(),
                "gate.tcp_addr",
            ),
            (
                "not TOML",
                format!("[gate]\n{ports}this is = = not toml\n"),
                "TOML parse error",
            ),
        ];
        for (i, (what, text, needle)) in cases.iter().enumerate() {
            let path = dir.write(&format!("bad-{i}.toml"), text);
            expect_config_refused(
                what,
                &dir,
                &["--config", path.to_str().unwrap()],
                &[],
                needle,
            )
            .await;
        }
        let missing = dir.0.join("no-such-file.toml");
        let missing = missing.to_str().unwrap();
        expect_config_refused(
            "missing file",
            &dir,
            &["--config", missing],
            &[],
            "no-such-file.toml",
        )
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_environment_override_exits_non_zero_naming_the_key() {
    bounded(TEST_TIMEOUT, async {
        let dir = TempDir::new("badenv");
        let ok = dir.write(
            "ok.toml",
            "[gate]\ntcp_addr = \"127.0.0.1:0\"\nws_addr = \"127.0.0.1:0\"\n",
        );
        let ok = ok.to_str().unwrap();
        let cases: &[(&str, (&str, &str), &str)] = &[
            (
                "max_conn_num = x",
                ("LONGLINK_GATE__MAX_CONN_NUM", "x"),
                "gate.max_conn_num",
            ),
            (
                "len_msg_len = 3",
                ("LONGLINK_GATE__LEN_MSG_LEN", "3"),
                "gate.len_msg_len",
            ),
            (
                "unknown key",
                ("LONGLINK_GATE__BOGUS_KEY", "1"),
                "gate.bogus_key",
            ),
        ];
        for (what, env, needle) in cases {
            expect_config_refused(what, &dir, &["--config", ok], &[*env], needle).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_overrides_the_config_file() {
    bounded(TEST_TIMEOUT, async {
        // The file names a port we hold, so the server can only start if the environment
        // variable wins.
        let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let held_addr = held.local_addr().unwrap();
        let mut last = String::new();
        for _ in 0..3 {
            let dir = TempDir::new("env");
            let (tcp, ws) = (free_addr(), free_addr());
            let config = dir.write(
                "chat.toml",
                &format!("[gate]\ntcp_addr = \"{held_addr}\"\nws_addr = \"{ws}\"\n"),
            );
            let tcp_env = tcp.to_string();
            let mut p = Proc::spawn(
                &dir,
                &["--config", config.to_str().unwrap()],
                &[("LONGLINK_GATE__TCP_ADDR", &tcp_env)],
            );
            match wait_serving(&mut p, Enc::Json, tcp, ws).await {
                Ok(()) => {
                    p.signal("TERM");
                    let status = p.wait().await;
                    assert_eq!(status.code(), Some(0), "stderr:\n{}", p.stderr());
                    drop(held);
                    return;
                }
                Err(why) => {
                    assert!(
                        !why.contains(&held_addr.to_string()),
                        "the config file's address was used, not the environment's: {why}"
                    );
                    last = why;
                }
            }
        }
        panic!("longlink-chat did not start: {last}");
    })
    .await;
}

/// Runs `longlink-chat token ...` and returns the token it prints.
async fn token_from_binary(dir: &TempDir, args: &[&str]) -> String {
    let mut p = Proc::spawn(dir, args, &[]);
    let status = p.wait().await;
    assert!(status.success(), "token: {status}; stderr:\n{}", p.stderr());
    let out = p.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "token prints one line: {out:?}");
    let token = lines[0].trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token:?}");
    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_subcommand_prints_a_token_that_logs_in() {
    bounded(TEST_TIMEOUT, async {
        let dir = TempDir::new("token");
        let tok = token_from_binary(&dir, &["token", "--uid", "5"]).await;
        for enc in Enc::ALL {
            let server = TestServer::start(enc).await;
            for t in Transport::ALL {
                let mut c = server.connect(t).await;
                let answer = c.login(&tok).await;
                assert_eq!(
                    (answer.ret, answer.uid),
                    (1, 5),
                    "{enc:?}/{t:?}: {answer:?}"
                );
            }
            server.shutdown().await;
        }

        // With --config, the token is signed with the configured secret.
        let config = dir.write("secret.toml", "[chat]\ntoken_secret = \"another-secret\"\n");
        let config = config.to_str().unwrap();
        let tok = token_from_binary(&dir, &["--config", config, "token", "--uid", "6"]).await;
        let default_secret = TestServer::start(Enc::Json).await;
        let mut c = default_secret.connect(Transport::Tcp).await;
        assert_eq!(c.login(&tok).await.ret, 0);
        c.expect_closed().await;
        default_secret.shutdown().await;
        let other_secret = TestServer::start_with(Enc::Json, |c| {
            c.chat.token_secret = "another-secret".into();
        })
        .await;
        let mut c = other_secret.connect(Transport::Ws).await;
        let answer = c.login(&tok).await;
        assert_eq!((answer.ret, answer.uid), (1, 6), "{answer:?}");
        other_secret.shutdown().await;

        // A token that expired (negative ttl) is refused.
        let tok = token_from_binary(&dir, &["token", "--uid", "7", "--ttl=-60"]).await;
        let server = TestServer::start(Enc::Json).await;
        let mut c = server.connect(Transport::Tcp).await;
        assert_eq!(c.login(&tok).await.ret, 0);
        c.expect_closed().await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_subcommand_needs_a_uid() {
    bounded(TEST_TIMEOUT, async {
        let dir = TempDir::new("tokenargs");
        for args in [
            &["token"][..],
            &["token", "--uid", "x"],
            &["token", "--uid", "-1"],
        ] {
            let mut p = Proc::spawn(&dir, args, &[]);
            let status = p.wait().await;
            assert!(!status.success(), "{args:?}: {status}");
            assert!(p.stdout().is_empty(), "{args:?}: printed {:?}", p.stdout());
            assert!(p.stderr().contains("uid"), "{args:?}: {}", p.stderr());
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_room_table_exits_2_naming_its_file_line_and_column() {
    bounded(TEST_TIMEOUT, async {
        let dir = TempDir::new("badrooms");
        let rooms = dir.write(
            "rooms.txt",
            "room\tname\tmax\twords\n1\tlobby\t0\t[]\n# a comment\n2\tsmall\t2\t[\"unclosed\n",
        );
        let config = dir.write(
            "chat.toml",
            &format!(
                "[gate]\ntcp_addr = \"127.0.0.1:0\"\nws_addr = \"127.0.0.1:0\"\n[chat]\nrooms_file = {:?}\n",
                rooms.display().to_string()
            ),
        );
        let mut p = Proc::spawn(&dir, &["--config", config.to_str().unwrap()], &[]);
        let status = p.wait().await;
        let stderr = p.stderr();
        assert_eq!(status.code(), Some(2), "stderr:\n{stderr}");
        // Line 4 of the file (header and comment counted), column 4 (the JSON cell).
        assert!(stderr.contains("rooms.txt:4: column 4"), "stderr:\n{stderr}");
        assert!(p.stdout().is_empty(), "stdout: {}", p.stdout());
    })
    .await;
}

/// The soft `Max open files` of a running process, from `/proc/<pid>/limits`.
fn soft_nofile(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("/proc limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    line.split_whitespace()
        .nth(3)
        .expect("soft")
        .parse()
        .expect("a number")
}

/// Issue 14, item 10c: an open-file limit below what `max_conn_num` needs is named at
/// start-up (soft and hard 256 against the default 10,000), with the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warns_at_start_when_the_open_file_limit_is_below_max_conn_num() {
    bounded(TEST_TIMEOUT, async {
        let mut s = serve_with_ulimit(Enc::Json, "", "ulimit -S -H -n 256").await;
        let stderr = s.proc.stderr();
        let line = stderr
            .lines()
            .find(|l| l.contains("WARN") && l.contains("open files"))
            .unwrap_or_else(|| panic!("no open-file warning; stderr:\n{stderr}"));
        for needle in ["256", "10000", "ulimit -n", "LimitNOFILE"] {
            assert!(
                line.contains(needle),
                "the warning lacks {needle:?}: {line}"
            );
        }
        s.proc.signal("TERM");
        assert_eq!(s.proc.wait().await.code(), Some(0));
    })
    .await;
}

/// With only the soft limit low (256) and a hard limit above what `max_conn_num = 500`
/// needs, the binary raises its soft limit (as Go does) and says nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raises_a_low_soft_open_file_limit_and_does_not_warn() {
    bounded(TEST_TIMEOUT, async {
        let mut s = serve_with_ulimit(Enc::Json, "max_conn_num = 500", "ulimit -S -n 256").await;
        let stderr = s.proc.stderr();
        assert!(
            !stderr.contains("open files"),
            "warned although the hard limit suffices:\n{stderr}"
        );
        let soft = soft_nofile(s.proc.pid());
        assert!(soft >= 564, "soft limit not raised: {soft}");
        s.proc.signal("TERM");
        assert_eq!(s.proc.wait().await.code(), Some(0));
    })
    .await;
}
