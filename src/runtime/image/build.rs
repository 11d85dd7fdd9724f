//! The node image's Dockerfile build through the classic builder (`POST /build`), and the
//! reading of its output: lines reassembled from the stream, and a failure explained by the
//! line that tells the most (the mirror unreachable, apt's `E:` line).

use std::collections::{HashMap, VecDeque};

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::BuildImageOptions;
use futures::StreamExt;

use super::{BASE_IMAGE, CONTEXT_LABEL, ImageError, NODE_IMAGE, Progress, one_line, push_tail};

/// How to run one build through the API.
pub(super) struct BuildSpec<'a> {
    /// Tag of the result.
    tag: &'a str,
    /// Build context (a tar archive) with a `Dockerfile` at its top.
    context: Vec<u8>,
    /// `ARG` values.
    build_args: HashMap<String, String>,
    /// Labels of the result.
    labels: HashMap<String, String>,
    /// Ignore the build cache.
    nocache: bool,
    /// Network of the RUN steps; `None` is Docker's default bridge.
    network: Option<&'a str>,
}

impl BuildSpec<'_> {
    /// The node image's build: `context` labelled with its `fingerprint`, without the build
    /// cache when `force`d.
    pub(super) fn node(context: Vec<u8>, fingerprint: &str, force: bool) -> BuildSpec<'static> {
        BuildSpec {
            tag: NODE_IMAGE,
            context,
            build_args: HashMap::from([("BASE".to_string(), BASE_IMAGE.to_string())]),
            labels: HashMap::from([(CONTEXT_LABEL.to_string(), fingerprint.to_string())]),
            nocache: force,
            // The default bridge network: apt-get in RUN must reach the mirror.
            network: None,
        }
    }
}

/// Runs a build, streaming its output lines to `progress` as phase "build".
pub(super) async fn build_image(
    docker: &Docker,
    spec: BuildSpec<'_>,
    progress: Progress<'_>,
) -> Result<(), ImageError> {
    let options = BuildImageOptions {
        dockerfile: "Dockerfile".into(),
        t: Some(spec.tag.into()),
        rm: true,
        forcerm: true,
        nocache: spec.nocache,
        buildargs: Some(spec.build_args),
        labels: Some(spec.labels),
        networkmode: spec.network.map(Into::into),
        ..Default::default()
    };
    let context = spec.context;
    let mut log = BuildLog::default();
    let mut lines = Lines::default();
    let emit = |line: String, log: &mut BuildLog| {
        progress("build", &line);
        log.push(line);
    };
    let mut output = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = output.next().await {
        match item {
            Ok(info) => {
                for text in [info.stream, info.status].into_iter().flatten() {
                    for line in lines.push(&text) {
                        emit(line, &mut log);
                    }
                }
            }
            Err(BollardError::DockerStreamError { error }) => {
                for line in lines.flush() {
                    emit(line, &mut log);
                }
                return Err(build_error(&error, &log));
            }
            Err(e) => {
                return Err(ImageError::Docker {
                    action: "building the node image",
                    source: e,
                });
            }
        }
    }
    for line in lines.flush() {
        emit(line, &mut log);
    }
    Ok(())
}

/// Reassembles output lines from chunks that may end mid-line. The classic builder merges
/// the RUN steps' stdout and stderr into one stream, wrapping every stderr write in
/// `ESC[91m` .. `ESC[0m`; the two are kept apart here so that a stderr line arriving while a
/// stdout line is half written does not get glued to it. Lines end at `\n` or `\r` (apt and
/// dpkg redraw progress with `\r`); other escape sequences and blank lines are dropped.
#[derive(Default)]
struct Lines {
    /// Partial stdout line, partial stderr line.
    pending: [String; 2],
    in_stderr: bool,
}

impl Lines {
    /// Takes the next chunk of output; returns the lines it completed.
    fn push(&mut self, chunk: &str) -> Vec<String> {
        let mut done = Vec::new();
        let mut chars = chunk.chars().peekable();
        while let Some(c) = chars.next() {
            let current = usize::from(self.in_stderr);
            match c {
                '\u{1b}' => {
                    if chars.next_if_eq(&'[').is_none() {
                        chars.next(); // a two-character escape
                        continue;
                    }
                    let mut params = String::new();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            if c == 'm' {
                                match params.as_str() {
                                    "91" => self.in_stderr = true,
                                    "0" | "" => self.in_stderr = false,
                                    _ => {}
                                }
                            }
                            break;
                        }
                        params.push(c);
                    }
                }
                '\n' | '\r' => {
                    done.extend(clean_line(&std::mem::take(&mut self.pending[current])));
                }
                c => self.pending[current].push(c),
            }
        }
        done
    }

    /// What is left at the end: the stdout part first.
    fn flush(&mut self) -> Vec<String> {
        self.pending
            .iter_mut()
            .filter_map(|p| clean_line(&std::mem::take(p)))
            .collect()
    }
}

/// A line without its trailing blanks, `None` if nothing else is left.
fn clean_line(raw: &str) -> Option<String> {
    let line = raw.trim_end();
    (!line.trim().is_empty()).then(|| line.to_string())
}

/// What a build said, kept to explain its failure.
#[derive(Default)]
struct BuildLog {
    /// The last lines.
    tail: VecDeque<String>,
    /// The first line that says the mirror could not be reached (apt-get update only warns,
    /// and the failure comes many lines later from apt-get install).
    network: Option<String>,
}

impl BuildLog {
    /// Takes the next line of output.
    fn push(&mut self, line: String) {
        const NETWORK: [&str; 6] = [
            "Temporary failure resolving",
            "Could not resolve",
            "Could not connect",
            "Failed to fetch",
            "Network is unreachable",
            "Connection timed out",
        ];
        if self.network.is_none() && NETWORK.iter().any(|n| line.contains(n)) {
            self.network = Some(one_line(&line));
        }
        push_tail(&mut self.tail, &line);
    }
}

/// Turns the builder's error and the output before it into an [`ImageError`].
fn build_error(error: &str, log: &BuildLog) -> ImageError {
    if let Some(line) = &log.network {
        return ImageError::BuildNetwork {
            detail: line.clone(),
        };
    }
    // "The command '/bin/sh -c <the whole RUN>' returned a non-zero code: 100" is mostly the
    // script: keep its end.
    let error = match error.rfind("returned a non-zero code:") {
        Some(i) if error.starts_with("The command") => format!("a RUN step {}", &error[i..]),
        _ => error.to_string(),
    };
    let detail = log
        .tail
        .iter()
        .rev()
        .find(|l| l.starts_with("E:") || l.contains("rror"))
        .or(log.tail.back())
        .map(|l| one_line(l))
        .unwrap_or_else(|| "none".into());
    ImageError::Build {
        error: one_line(&error),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::image::context::{ContextFile, write_context};
    use crate::runtime::image::tests::{engine, ensured, quiet};
    use crate::runtime::image::{TAIL_LINES, image_exists};

    fn log_of(lines: &[&str]) -> BuildLog {
        let mut log = BuildLog::default();
        for l in lines {
            log.push(l.to_string());
        }
        log
    }

    #[test]
    fn build_errors_are_explained() {
        let mut lines = vec![
            "Step 4/8 : RUN set -eux; apt-get update",
            "Err:1 http://deb.debian.org/debian bookworm InRelease",
            "  Temporary failure resolving 'deb.debian.org'",
        ];
        // The install's complaints come long after the warning.
        lines.extend(std::iter::repeat_n(
            "E: Unable to locate package x",
            2 * TAIL_LINES,
        ));
        let e = build_error(
            "The command '/bin/sh -c set -eux; ...' returned a non-zero code: 100",
            &log_of(&lines),
        );
        assert!(matches!(e, ImageError::BuildNetwork { .. }), "{e}");
        assert!(e.to_string().contains("Temporary failure resolving"), "{e}");

        let log = log_of(&[
            "Reading package lists...",
            "E: Unable to locate package nope",
            "x",
        ]);
        let e = build_error(
            "The command '/bin/sh -c apt-get install nope' returned a non-zero code: 100",
            &log,
        );
        let msg = e.to_string();
        assert!(
            msg.contains("a RUN step returned a non-zero code: 100"),
            "{msg}"
        );
        assert!(msg.contains("E: Unable to locate package nope"), "{msg}");
        let e = build_error("COPY failed: file not found", &BuildLog::default());
        assert!(
            e.to_string()
                .contains("COPY failed: file not found (last output: none)"),
            "{e}"
        );
    }

    #[test]
    fn output_lines_are_reassembled() {
        let mut l = Lines::default();
        assert!(l.push("\u{1b}[91m+ \u{1b}[0m").is_empty());
        assert_eq!(
            l.push("\u{1b}[91mapt-get install x\n\u{1b}[0m"),
            ["+ apt-get install x"]
        );
        assert_eq!(l.push("a 5%\ra 10%\r\nStep 2/8 : FROM"), ["a 5%", "a 10%"]);
        assert_eq!(l.flush(), ["Step 2/8 : FROM"]);
        assert!(l.flush().is_empty());
        // stderr written while a stdout line is half done (seen with apt-get install),
        // and C++'s unbuffered cerr writing "E: " and the message separately.
        let mut l = Lines::default();
        assert!(
            l.push("Reading package lists...\nBuilding dependency tree...")
                .len()
                == 1
        );
        assert!(l.push("\u{1b}[91mE: \u{1b}[0m").is_empty());
        assert_eq!(
            l.push("\u{1b}[91mUnable to locate package nope\u{1b}[0m\u{1b}[91m\n\u{1b}[0m"),
            ["E: Unable to locate package nope"]
        );
        assert_eq!(
            l.push("\n\u{1b}[1;32mok\u{1b}[m\n"),
            ["Building dependency tree...", "ok"]
        );
    }

    // ----- needs a Docker engine ------------------------------------------------------------

    /// A build of just `dockerfile`, without the build cache and cut off from every network.
    fn offline_spec<'a>(tag: &'a str, dockerfile: &str) -> BuildSpec<'a> {
        BuildSpec {
            tag,
            context: write_context(&[ContextFile {
                path: "Dockerfile",
                mode: 0o644,
                data: dockerfile.as_bytes(),
            }])
            .unwrap(),
            build_args: HashMap::new(),
            labels: HashMap::new(),
            nocache: true,
            network: Some("none"),
        }
    }

    #[tokio::test]
    async fn build_failure_reports_the_failing_line() {
        let Some(docker) = engine().await else {
            eprintln!("skipped: no docker engine answers");
            return;
        };
        ensured(&docker).await;
        let tag = "tcplab/test-build-fails:never";
        let dockerfile =
            format!("FROM {BASE_IMAGE}\nRUN apt-get install -y tcplab-no-such-package\n");
        let spec = offline_spec(tag, &dockerfile);
        let err = build_image(&docker, spec, &quiet).await.unwrap_err();
        let msg = err.to_string();
        eprintln!("message: {msg}");
        assert!(matches!(err, ImageError::Build { .. }), "{msg}");
        assert!(
            msg.contains("a RUN step returned a non-zero code: 100"),
            "{msg}"
        );
        assert!(
            msg.contains("E: Unable to locate package tcplab-no-such-package"),
            "{msg}"
        );
        assert!(!image_exists(&docker, tag).await.unwrap());
    }

    #[tokio::test]
    async fn build_without_network_says_so() {
        let Some(docker) = engine().await else {
            eprintln!("skipped: no docker engine answers");
            return;
        };
        ensured(&docker).await;
        // The node Dockerfile's apt-get, its RUN step cut off from every network. (A small
        // Dockerfile: with the node one and nocache, every run would leave a COPY layer.)
        let tag = "tcplab/test-no-network:never";
        let dockerfile = format!(
            "FROM {BASE_IMAGE}\nRUN apt-get update && apt-get install -y --no-install-recommends iproute2\n"
        );
        let spec = offline_spec(tag, &dockerfile);
        let err = build_image(&docker, spec, &quiet).await.unwrap_err();
        eprintln!("message: {err}");
        assert!(matches!(err, ImageError::BuildNetwork { .. }), "{err}");
        assert!(!image_exists(&docker, tag).await.unwrap());
    }
}
