//! The parsed form of a Dockerfile. Words keep their `$VAR` references: they are expanded when
//! the step runs, with the stage's ARG and ENV values of that moment (`dockerfile::expand`).

/// A whole Dockerfile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dockerfile {
    /// `# escape=` (default `\`).
    pub escape: char,
    /// `# syntax=` when given (accepted, not used).
    pub syntax: Option<String>,
    /// `ARG`s before the first `FROM` (usable in `FROM` lines only, unless redeclared).
    pub global_args: Vec<ArgDecl>,
    pub stages: Vec<Stage>,
}

/// One `FROM` and the instructions after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stage {
    /// `AS name`, lowercased.
    pub name: Option<String>,
    /// The base image as written (`scratch`, a reference, a stage name; may hold `$ARG`s).
    pub base: String,
    /// `--platform=`.
    pub platform: Option<String>,
    /// 1-based line of the `FROM`.
    pub line: usize,
    pub instructions: Vec<Instruction>,
}

/// One instruction with where it is and how it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where it starts.
    pub line: usize,
    /// The instruction as written, continuations joined and heredoc bodies included (for the
    /// cache key and the image history).
    pub original: String,
    pub kind: Kind,
}

/// `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// Shell form (run through the stage's `SHELL`, default `/bin/sh -c`) or exec form (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

/// A file given inline as a heredoc (`COPY <<EOF /dest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    /// The heredoc's name (`EOF`), used as the source name.
    pub name: String,
    /// The body, one `\n` after every line (leading tabs already stripped for `<<-EOF`).
    pub content: String,
    /// The name was unquoted (`<<EOF`, not `<<"EOF"`/`<<'EOF'`): `$VAR`s in the content are
    /// substituted when the step runs (`dockerfile::expand_heredoc`), as BuildKit does.
    pub expand: bool,
}

/// `COPY` / `ADD`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopySpec {
    /// Sources as written (globs, directories, URLs for ADD; may hold `$VAR`s).
    pub sources: Vec<String>,
    /// Heredoc sources (`COPY <<EOF /dest`), in order.
    pub inline: Vec<InlineFile>,
    pub dest: String,
    /// `--from=stage|image|index`.
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=0755` (octal).
    pub chmod: Option<String>,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    None,
    Check {
        /// `CMD` in shell or exec form.
        test: Command,
        /// Durations as written (`30s`, `1m30s`).
        interval: Option<String>,
        timeout: Option<String>,
        start_period: Option<String>,
        start_interval: Option<String>,
        retries: Option<u32>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Arg(Vec<ArgDecl>),
    /// `ENV k=v …` or the legacy `ENV k v`; keys and values as written, quotes included (as
    /// BuildKit keeps them): `dockerfile::expand` substitutes and removes quotes and escapes.
    Env(Vec<(String, String)>),
    /// `RUN [--network=…] cmd`; a heredoc script (`RUN <<EOF`) or a shell command whose own
    /// heredoc spans the following lines is a `Command::Shell` holding the whole script.
    Run {
        command: Command,
        network: Option<String>,
    },
    Copy(CopySpec),
    Add(CopySpec),
    Workdir(String),
    User(String),
    Cmd(Command),
    Entrypoint(Command),
    Expose(Vec<String>),
    Volume(Vec<String>),
    /// `LABEL k=v …` (or legacy `LABEL k v`); keys and values as written, like `Env`.
    Label(Vec<(String, String)>),
    Healthcheck(Healthcheck),
    Shell(Vec<String>),
    StopSignal(String),
    /// The trigger instruction's text, run when the image is used as a base.
    Onbuild(String),
    Maintainer(String),
}
