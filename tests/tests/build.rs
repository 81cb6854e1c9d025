//! End-to-end tests of the Dockerfile builder (`rcompose image build`, `build`, `up --build`) on
//! the busybox fixture: multi-stage with `COPY --from`, heredocs, ARG/ENV expansion, WORKDIR
//! chaining, `--chown`/`--chmod`, `ADD` of a tarball, `.dockerignore`, the cache, a failing RUN.
//! Root only; every test has its own state root.

use std::io::Write;

use e2e::{busybox_env, TestEnv};

const DOCKERFILE: &str = r#"# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM ${BASE} AS builder
WORKDIR /src
COPY hello.txt .
RUN cat hello.txt > out.txt && echo built >> out.txt
RUN <<EOF
echo from-heredoc > /src/heredoc.txt
EOF

FROM busybox
ARG GREETING=hi
ENV MSG=${GREETING}-world \
    OTHER="two words"
WORKDIR app
WORKDIR sub
COPY --from=builder /src/out.txt /src/heredoc.txt ./
COPY --chown=1000:1001 --chmod=600 secret.txt /etc/secret.txt
ADD files.tar.gz /opt/
COPY ctx/ /ctx/
RUN cp /etc/group /tmp/g && cat << _EOF_ >> /tmp/g
extra line
_EOF_
LABEL stage=final
CMD ["cat", "out.txt"]
"#;

fn write_context(env: &TestEnv) -> std::path::PathBuf {
    let dir = env.work_dir().join("app");
    std::fs::create_dir_all(dir.join("ctx/sub")).expect("mkdir");
    std::fs::write(dir.join("Dockerfile"), DOCKERFILE).expect("Dockerfile");
    std::fs::write(dir.join("hello.txt"), "hello\n").expect("hello");
    std::fs::write(dir.join("secret.txt"), "s3cret\n").expect("secret");
    std::fs::write(dir.join("ctx/keep.log"), "kept\n").expect("keep");
    std::fs::write(dir.join("ctx/drop.log"), "dropped\n").expect("drop");
    std::fs::write(dir.join("ctx/sub/a.txt"), "a\n").expect("a");
    std::fs::write(dir.join(".dockerignore"), "**/*.log\n!ctx/keep.log\n").expect("ignore");
    // files.tar.gz holds tarred/inner.txt.
    let f = std::fs::File::create(dir.join("files.tar.gz")).expect("tar file");
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "tarred/inner.txt", &b"inner\n"[..])
        .expect("tar entry");
    b.into_inner()
        .expect("tar done")
        .finish()
        .expect("gzip done")
        .flush()
        .expect("flush");
    dir
}

fn run_in(env: &TestEnv, image: &str, script: &str) -> String {
    env.run_ok(["container", "run", "--rm", image, "sh", "-c", script])
        .expect("container runs")
        .stdout
}

fn image_id(env: &TestEnv, image: &str) -> String {
    let out = env
        .run_ok(["image", "inspect", image])
        .expect("inspect")
        .stdout;
    let v: serde_json::Value = serde_json::from_str(&out).expect("inspect prints JSON");
    v[0]["Id"].as_str().expect("an Id").to_owned()
}

fn no_containers_or_mounts(env: &TestEnv) {
    let ls = env.run_ok(["container", "ls", "-aq"]).expect("ls").stdout;
    assert!(ls.trim().is_empty(), "containers left: {ls}");
    let mounts = env.state_root().mounts().expect("mountinfo");
    assert!(
        mounts
            .iter()
            .all(|m| !m.starts_with(env.root().join("containers"))),
        "mounts left: {mounts:?}"
    );
}

#[test]
fn dockerfile_features_cache_and_identical_rebuild() {
    let (env, _registry) = busybox_env();
    let dir = write_context(&env);
    let ctx = dir.to_string_lossy().into_owned();
    let out = env
        .run_ok([
            "image",
            "build",
            "-t",
            "built:1",
            "--build-arg",
            "GREETING=hey",
            &ctx,
        ])
        .expect("build works");
    assert!(out.stdout.contains("Step 1/"), "{out:?}");
    assert!(
        out.stdout.contains("Successfully tagged built:1"),
        "{out:?}"
    );

    let got = run_in(
        &env,
        "built:1",
        "pwd; cat out.txt heredoc.txt; echo $MSG; echo $OTHER; stat -c '%u %g %a' /etc/secret.txt; cat /opt/tarred/inner.txt; ls /ctx; ls /ctx/sub; tail -n 1 /tmp/g",
    );
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines,
        [
            "/app/sub",
            "hello",
            "built",
            "from-heredoc",
            "hey-world",
            "two words",
            "1000 1001 600",
            "inner",
            "keep.log",
            "sub",
            "a.txt",
            "extra line"
        ],
        "{got}"
    );
    let cmd = env
        .run_ok(["container", "run", "--rm", "built:1"])
        .expect("default cmd runs")
        .stdout;
    assert_eq!(cmd, "hello\nbuilt\n");

    // Nothing changed: every layer step is a cache hit and the image id is the same.
    let first = image_id(&env, "built:1");
    let again = env
        .run_ok([
            "image",
            "build",
            "-t",
            "built:2",
            "--build-arg",
            "GREETING=hey",
            &ctx,
        ])
        .expect("rebuild works");
    assert!(!again.stdout.contains("Running in"), "{again:?}");
    assert!(again.stdout.contains("Using cache"), "{again:?}");
    assert_eq!(image_id(&env, "built:2"), first);

    // A changed input rebuilds from that step on.
    std::fs::write(dir.join("hello.txt"), "changed\n").expect("edit");
    let changed = env
        .run_ok(["image", "build", "-q", "-t", "built:3", &ctx])
        .expect("build after a change");
    assert_ne!(changed.stdout.trim(), first);
    assert_eq!(
        env.run_ok(["container", "run", "--rm", "built:3"])
            .expect("runs")
            .stdout,
        "changed\nbuilt\n"
    );
    no_containers_or_mounts(&env);
}

#[test]
fn failing_run_names_the_step_and_leaves_nothing() {
    let (env, _registry) = busybox_env();
    let dir = env.work_dir().join("bad");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nRUN echo ok\nRUN echo failing && exit 7\n",
    )
    .expect("Dockerfile");
    let out = env
        .run(["image", "build", "-t", "bad", &dir.to_string_lossy()])
        .expect("rcompose runs");
    assert!(!out.success(), "{out:?}");
    assert!(out.stderr.contains("Dockerfile:3"), "{out:?}");
    assert!(out.stderr.contains("exit code 7"), "{out:?}");
    assert!(out.stdout.contains("failing"), "{out:?}");
    no_containers_or_mounts(&env);
}

#[test]
fn compose_up_builds_the_service_image() {
    let (mut env, _registry) = busybox_env();
    let dir = env.work_dir();
    std::fs::create_dir_all(dir.join("web")).expect("mkdir");
    std::fs::write(
        dir.join("web/Dockerfile"),
        "FROM busybox\nARG WHO\nRUN echo \"built for $WHO\" > /greeting && echo \"interfaces $(grep -c : /proc/net/dev)\" >> /greeting\nCMD [\"cat\", \"/greeting\"]\n",
    )
    .expect("Dockerfile");
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  web:\n    build:\n      context: ./web\n      args: {WHO: compose}\n      network: none\n    network_mode: none\n  tool:\n    build:\n      context: ./web\n      args: {WHO: run}\n    network_mode: none\n    profiles: [tools]\n",
    )
    .expect("compose file");
    env.defer(["down", "-t", "1", "--rmi", "local"]);
    env.run_ok(["up", "-d"]).expect("up builds and starts");
    // --build rebuilds (from the cache: same image, so nothing is recreated).
    let again = env.run_ok(["up", "-d", "--build"]).expect("up --build");
    assert!(again.stdout.contains("Using cache"), "{again:?}");
    assert!(!again.stderr.contains("Recreated"), "{again:?}");
    let project = env.project().to_owned();
    let logs = env
        .run_ok(["logs", "--no-log-prefix"])
        .expect("logs")
        .stdout;
    assert!(logs.contains("built for compose"), "{logs}");
    // build.network: none → the RUN step saw loopback only.
    assert!(logs.contains("interfaces 1"), "{logs}");
    let images = env.run_ok(["image", "ls"]).expect("image ls").stdout;
    assert!(images.contains(&format!("{project}-web")), "{images}");
    // `run` of a service whose image is missing builds it first.
    let ran = env
        .run_ok(["run", "--rm", "-T", "tool"])
        .expect("run builds and runs");
    assert!(ran.stdout.contains("built for run"), "{ran:?}");
    // `build` alone reuses the cache.
    let out = env.run_ok(["build"]).expect("build");
    assert!(out.stdout.contains("Using cache"), "{out:?}");
}

#[test]
fn onbuild_triggers_and_inline_files() {
    let (env, _registry) = busybox_env();
    let base = env.work_dir().join("base");
    let child = env.work_dir().join("child");
    std::fs::create_dir_all(&base).expect("mkdir");
    std::fs::create_dir_all(&child).expect("mkdir");
    std::fs::write(
        base.join("Dockerfile"),
        "FROM busybox\nONBUILD RUN echo triggered > /onbuild.txt\n",
    )
    .expect("Dockerfile");
    env.run_ok([
        "image",
        "build",
        "-q",
        "-t",
        "obase",
        &base.to_string_lossy(),
    ])
    .expect("base builds");
    std::fs::write(
        child.join("Dockerfile"),
        "FROM obase\nARG NAME=inline\nCOPY <<EOF /etc/note.txt\nhello $NAME\nEOF\nCOPY <<'RAW' /etc/raw.txt\nkeep $NAME\nRAW\nRUN --network=none grep -c : /proc/net/dev > /netdevs\n",
    )
    .expect("Dockerfile");
    // The context as a tarball.
    let tarball = env.work_dir().join("child.tar");
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(&child)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .expect("tar runs");
    assert!(status.success());
    env.run_ok(["image", "build", "-t", "ochild", &tarball.to_string_lossy()])
        .expect("child builds from a tarball context");
    let got = run_in(
        &env,
        "ochild",
        "cat /onbuild.txt /etc/note.txt /etc/raw.txt /netdevs",
    );
    // RUN --network=none sees loopback only.
    assert_eq!(got, "triggered\nhello inline\nkeep $NAME\n1\n");
}

#[test]
fn add_downloads_a_url() {
    use std::io::Read;
    let (env, _registry) = busybox_env();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let body = "remote content\n";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let dir = env.work_dir().join("url");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM busybox\nADD http://127.0.0.1:{port}/files/remote.txt /srv/\n"),
    )
    .expect("Dockerfile");
    env.run_ok(["image", "build", "-t", "fromurl", &dir.to_string_lossy()])
        .expect("build with ADD url");
    server.join().expect("server thread");
    let got = run_in(
        &env,
        "fromurl",
        "cat /srv/remote.txt; stat -c %a /srv/remote.txt",
    );
    assert_eq!(got, "remote content\n600\n");
}
