//! Tests of the binary's configuration tools and errors: `config check`, `config print`,
//! errors that name the file line or the environment variable, durations with units.

mod common;

use common::process::*;
use common::*;

/// Runs `longlink-chat args` with `env` to its exit: (exit code, stdout, stderr).
async fn run(dir: &TempDir, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut p = Proc::spawn(dir, args, env);
    let status = p.wait().await;
    (status.code(), p.stdout(), p.stderr())
}

/// `config check` of a file with `text`: it must exit 2, print nothing on stdout, and name
/// every one of `needles` on stderr.
async fn check_refuses(dir: &TempDir, name: &str, text: &str, needles: &[&str]) {
    let path = dir.write(name, text);
    let path = path.to_str().unwrap();
    let (code, stdout, stderr) = run(dir, &["config", "check", path], &[]).await;
    assert_eq!(code, Some(2), "{name}: stderr:\n{stderr}");
    assert!(stdout.is_empty(), "{name}: stdout: {stdout}");
    for needle in needles {
        let needle = needle.replace("{path}", path);
        assert!(
            stderr.contains(&needle),
            "{name}: stderr does not name {needle:?}:\n{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_errors_name_the_file_line() {
    bounded(TEST_TIMEOUT, async {
        let dir = TempDir::new("cfgline");
        let cases: &[(&str, &[&str])] = &[
            // A value of the wrong type (found by the loader).
            (
                "[gate]\ntcp_addr = \"127.0.0.1:0\"\n\nmax_conn_num = \"abc\"\n",
                &["gate.max_conn_num", "(from {path}, line 4)"],
            ),
            // A value out of range (found by the checks after loading).
            (
                "# comment\n[chat]\nmax_text_len = 5\n[gate]\nlen_msg_len = 3\n",
                &["gate.len_msg_len", "(from {path}, line 5)"],
            ),
            // An unknown key, and an unknown section.
            (
                "[gate]\nbogus_key = 1\n",
                &["gate.bogus_key", "(from {path}, line 2)"],
            ),
            (
                "[gate]\n[nope]\nx = 1\n",
                &["nope", "(from {path}, line 2)"],
            ),
            // A dotted key.
            (
                "gate.max_conn_num = 0\n",
                &["gate.max_conn_num", "(from {path}, line 1)"],
            ),
            // Not TOML at all.
            (
                "[gate]\nmax_conn_num = 1\nthis is = = not toml\n",
                &["TOML parse error", "(from {path}, line 3)"],
            ),
            // A duration that is neither seconds nor a number with a unit.
            (
                "[cluster]\nrequest_timeout = \"3 fortnights\"\n",
                &["cluster.request_timeout", "(from {path}, line 2)"],
            ),
            // A log level that is no filter.
            (
                "[log]\nformat = \"json\"\nlevel = \"info,=,\"\n",
                &["log.level", "(from {path}, line 3)"],
            ),
        ];
        for (i, (text, needles)) in cases.iter().enumerate() {
            check_refuses(&dir, &format!("bad-{i}.toml"), text, needles).await;
        }
        // The server names it the same way when it refuses to start.
        let bad = dir.write(
            "start.toml",
            "[gate]\nws_addr = \"127.0.0.1:0\"\nlen_msg_len = 3\n",
        );
        let bad = bad.to_str().unwrap();
        let (code, stdout, stderr) = run(&dir, &["--config", bad], &[]).await;
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stdout.is_empty());
        assert!(
            stderr.contains(&format!(
                "gate.len_msg_len: must be 1, 2 or 4, not 3 (from {bad}, line 3)"
            )),
            "{stderr}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_errors_name_the_environment_variable() {
    bounded(TEST_TIMEOUT, async {
        let dir = TempDir::new("cfgenv");
        let file = dir.write("ok.toml", "[gate]\nmax_conn_num = 100\n");
        let file = file.to_str().unwrap();
        let cases: &[((&str, &str), &str)] = &[
            (
                ("LONGLINK_GATE__MAX_CONN_NUM", "abc"),
                "gate.max_conn_num: invalid type: found string \"abc\"",
            ),
            (("LONGLINK_GATE__LEN_MSG_LEN", "3"), "gate.len_msg_len"),
            (("LONGLINK_GATE__BOGUS_KEY", "1"), "gate.bogus_key"),
            (("LONGLINK_GATE__IDLE_TIMEOUT", "soon"), "gate.idle_timeout"),
        ];
        for ((var, value), needle) in cases {
            let origin = format!("(from environment variable {var})");
            // Over a file that sets the same key, and in `config check` as when starting.
            for args in [&["--config", file][..], &["config", "check", file]] {
                let (code, stdout, stderr) = run(&dir, args, &[(*var, *value)]).await;
                assert_eq!(code, Some(2), "{var}={value} {args:?}: {stderr}");
                assert!(stdout.is_empty(), "{stdout}");
                assert!(
                    stderr.contains(needle) && stderr.contains(&origin),
                    "{var}={value} {args:?}: stderr does not name {needle:?} {origin:?}:\n{stderr}"
                );
                assert!(!stderr.contains("ok.toml"), "blames the file:\n{stderr}");
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_check_exits_0_for_a_good_file_and_2_with_the_errors() {
    bounded(TEST_TIMEOUT, async {
        let dir = TempDir::new("cfgcheck");
        let good = dir.write(
            "good.toml",
            "[gate]\ntcp_addr = \"0.0.0.0:3563\"\nidle_timeout = \"2m\"\n[log]\nformat = \"json\"\n",
        );
        let good = good.to_str().unwrap();
        let (code, stdout, stderr) = run(&dir, &["config", "check", good], &[]).await;
        assert_eq!(code, Some(0), "stderr:\n{stderr}");
        assert_eq!(stdout.trim(), format!("{good}: ok"));
        assert!(stderr.is_empty(), "{stderr}");
        // It only checks: the addresses in the file are not bound, nothing is served.
        // The file may come from --config too.
        let (code, _, stderr) = run(&dir, &["--config", good, "config", "check"], &[]).await;
        assert_eq!(code, Some(0), "stderr:\n{stderr}");

        check_refuses(
            &dir,
            "bad.toml",
            "[gate]\nmax_conn_num = -1\n",
            &["gate.max_conn_num", "line 2"],
        )
        .await;
        // Every bad value at once, each with its origin, one a line.
        let many = dir.write(
            "many.toml",
            "[gate]\ntcp_addr = 5\nbogus = 1\n[chat]\nmax_text_len = \"x\"\n[log]\nformat = \"xml\"\n",
        );
        let many = many.to_str().unwrap();
        let (code, stdout, stderr) = run(
            &dir,
            &["config", "check", many],
            &[("LONGLINK_GATE__IDLE_TIMEOUT", "soon")],
        )
        .await;
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        let lines: Vec<&str> = stderr.lines().collect();
        for (key, origin) in [
            ("gate.tcp_addr", format!("(from {many}, line 2)")),
            ("gate.bogus", format!("(from {many}, line 3)")),
            ("chat.max_text_len", format!("(from {many}, line 5)")),
            ("log.format", format!("(from {many}, line 7)")),
            (
                "gate.idle_timeout",
                "(from environment variable LONGLINK_GATE__IDLE_TIMEOUT)".into(),
            ),
        ] {
            assert!(
                lines
                    .iter()
                    .any(|l| l.contains(&format!(" {key}: ")) && l.ends_with(&origin)),
                "no line names {key} {origin}:\n{stderr}"
            );
        }
        assert_eq!(lines.len(), 5, "{stderr}");
        let missing = dir.0.join("missing.toml");
        let (code, stdout, stderr) =
            run(&dir, &["config", "check", missing.to_str().unwrap()], &[]).await;
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stdout.is_empty() && stderr.contains("missing.toml"), "{stderr}");
    })
    .await;
}

/// The lines of `config print` without their origin comments.
fn without_comments(printed: &str) -> Vec<String> {
    printed
        .lines()
        .map(|l| match l.rsplit_once(" # ") {
            Some((setting, _)) if l.contains(" = ") => setting.to_owned(),
            _ => l.to_owned(),
        })
        .collect()
}

/// The `key = value` line of `key` in section `section` of printed TOML.
fn line_of<'a>(printed: &'a str, section: &str, key: &str) -> &'a str {
    let body = printed
        .split(&format!("[{section}]\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("no [{section}]:\n{printed}"));
    body.lines()
        .take_while(|l| !l.starts_with('['))
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {section}.{key}:\n{printed}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_print_shows_every_key_with_its_origin_and_round_trips() {
    bounded(TEST_TIMEOUT, async {
        let dir = TempDir::new("cfgprint");
        let file = dir.write(
            "chat.toml",
            "[gate]\nws_addr = \"0.0.0.0:3653\"\nhttp_timeout = \"500ms\"\n[chat]\nmax_text_len = 99\n",
        );
        let file = file.to_str().unwrap();
        let env = [("LONGLINK_GATE__MAX_CONN_NUM", "77")];
        let (code, printed, stderr) = run(&dir, &["--config", file, "config", "print"], &env).await;
        assert_eq!(code, Some(0), "stderr:\n{stderr}");
        let expect = [
            ("gate", "ws_addr", format!("\"0.0.0.0:3653\" # {file}, line 2")),
            ("gate", "http_timeout", format!("0.5 # {file}, line 3")),
            ("chat", "max_text_len", format!("99 # {file}, line 5")),
            (
                "gate",
                "max_conn_num",
                "77 # environment variable LONGLINK_GATE__MAX_CONN_NUM".into(),
            ),
            ("gate", "tcp_addr", "\"127.0.0.1:3563\" # embedded default".into()),
            ("chat", "dev_tokens", "false # default under a config file".into()),
            ("log", "format", "\"text\" # embedded default".into()),
            // Not in any layer: the type's own default, printed all the same.
            ("gate", "handshake_share", "25 # built-in default".into()),
        ];
        for (section, key, value) in expect {
            assert_eq!(
                line_of(&printed, section, key),
                format!("{key} = {value}"),
                "{printed}"
            );
        }
        for line in printed.lines().filter(|l| l.contains(" = ")) {
            assert!(line.contains(" # "), "a key without its origin: {line}");
        }
        for section in ["[gate]", "[chat]", "[cluster]", "[admin]", "[log]"] {
            assert!(printed.contains(section), "no {section}:\n{printed}");
        }

        // Loaded back as the only file, without the variable: the same configuration.
        let again = dir.write("printed.toml", &printed);
        let again = again.to_str().unwrap();
        let (code, stdout, stderr) = run(&dir, &["config", "check", again], &[]).await;
        assert_eq!((code, stderr.as_str()), (Some(0), ""), "{stdout}");
        let (code, reprinted, stderr) =
            run(&dir, &["--config", again, "config", "print"], &[]).await;
        assert_eq!(code, Some(0), "stderr:\n{stderr}");
        assert_eq!(without_comments(&reprinted), without_comments(&printed));
        // Every value now comes from that file, but the one the test runner sets.
        for line in reprinted.lines().filter(|l| l.contains(" = ")) {
            assert!(
                line.contains(&format!(" # {again}, line "))
                    || line.ends_with(" # environment variable LONGLINK_ADMIN__ADDR"),
                "{line}"
            );
        }

        // Without a file: the embedded default (dev_tokens on) and the environment.
        let (code, printed, stderr) = run(&dir, &["config", "print"], &[]).await;
        assert_eq!(code, Some(0), "stderr:\n{stderr}");
        assert_eq!(
            line_of(&printed, "chat", "dev_tokens"),
            "dev_tokens = true # embedded default"
        );
        // The test runner sets it (so that parallel binaries do not share a port).
        assert_eq!(
            line_of(&printed, "admin", "addr"),
            "addr = \"127.0.0.1:0\" # environment variable LONGLINK_ADMIN__ADDR"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durations_take_seconds_or_units() {
    bounded(TEST_TIMEOUT, async {
        let dir = TempDir::new("cfgdur");
        let file = dir.write(
            "chat.toml",
            "[gate]\nhttp_timeout = \"500ms\"\nidle_timeout = \"1m\"\nresume_window = \"1h\"\n\
             close_timeout = 2\nread_timeout = 1.5\nws_ping_interval = \"1m30s\"\n\
             [cluster]\nrequest_timeout = \"3s\"\n",
        );
        let file = file.to_str().unwrap();
        let env = [("LONGLINK_GATE__WS_PONG_TIMEOUT", "20s")];
        let (code, printed, stderr) = run(&dir, &["--config", file, "config", "print"], &env).await;
        assert_eq!(code, Some(0), "stderr:\n{stderr}");
        for (section, key, secs) in [
            ("gate", "http_timeout", "0.5"),
            ("gate", "idle_timeout", "60.0"),
            ("gate", "resume_window", "3600.0"),
            ("gate", "close_timeout", "2.0"),
            ("gate", "read_timeout", "1.5"),
            ("gate", "ws_ping_interval", "90.0"),
            ("gate", "ws_pong_timeout", "20.0"),
            ("cluster", "request_timeout", "3.0"),
        ] {
            let line = line_of(&printed, section, key);
            assert!(line.starts_with(&format!("{key} = {secs} # ")), "{line}");
        }
        // The server runs with them: a connection idle past "300ms" is closed.
        let mut s = serve(Enc::Json, "idle_timeout = \"300ms\"\nread_timeout = \"5s\"").await;
        let mut c = Client::connect(Transport::Tcp, Enc::Json, s.tcp).await;
        match c.recv().await {
            Reply::Kick(kick) => assert_eq!(kick.reason, "idle"),
            other => panic!("expected the idle kick, got {other:?}"),
        }
        c.expect_closed().await;
        s.proc.signal("TERM");
        assert_eq!(s.proc.wait().await.code(), Some(0), "{}", s.proc.stderr());
    })
    .await;
}
