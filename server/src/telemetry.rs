//! Logging setup. The sink (and, for tests, the filter) is a parameter, so
//! tests can stay quiet or read what would have been logged.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// The filter from `RUST_LOG`, or `info` (with sqlx at `warn`) by default.
pub fn env_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"))
}

/// The one place the log format is configured, for [`init`] and
/// [`subscriber`] alike.
fn builder<W>(
    filter: EnvFilter,
    ansi: bool,
    sink: W,
) -> tracing_subscriber::fmt::SubscriberBuilder<
    tracing_subscriber::fmt::format::DefaultFields,
    tracing_subscriber::fmt::format::Format,
    EnvFilter,
    W,
>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(sink)
}

/// Installs the global subscriber: human-readable or JSON lines, filtered by
/// `RUST_LOG` (see [`env_filter`]), coloured only when `ansi` is set (a
/// terminal). Later calls are ignored.
pub fn init<W>(format: LogFormat, ansi: bool, sink: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = builder(env_filter(), ansi, sink);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// The subscriber [`init`] would install, with an explicit filter and no
/// colour, without installing it: for `tracing::subscriber::set_default` in
/// tests that read the log.
pub fn subscriber<W>(format: LogFormat, filter: EnvFilter, sink: W) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = builder(filter, false, sink);
    match format {
        LogFormat::Human => Box::new(builder.finish()),
        LogFormat::Json => Box::new(builder.json().flatten_event(true).finish()),
    }
}
