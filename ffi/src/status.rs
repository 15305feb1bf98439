//! What crosses the boundary instead of a Rust error: a [`WavecastStatus`], and
//! the [`FfiError`] behind it with the message C callers read.

/// What a `wavecast_` function did. Every function but the two that free returns
/// one; out-parameters are set to NULL first and filled only with
/// `WAVECAST_STATUS_OK`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavecastStatus {
    /// It worked.
    Ok = 0,
    /// It failed: `wavecast_last_error_message()` says why.
    Error = 1,
    /// `wavecast_cancel` stopped it; the installed release is unchanged.
    Cancelled = 2,
    /// There was nothing to do: no update to install or stage, nothing staged to
    /// apply. Out-parameters are set to NULL.
    Nothing = 3,
    /// `wavecast_open` found no configuration in the root: initialize it first
    /// (`wavecast_init`, or `wavecast-update init`).
    NotInitialized = 4,
    /// A required pointer was NULL, or a string was not UTF-8.
    InvalidArgument = 5,
    /// The library panicked (a bug in it); the message has the panic's text. The
    /// handle may still be used: the root's journal keeps an interrupted install
    /// recoverable.
    Panic = 6,
}

/// Why a call failed, on the Rust side of the boundary.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FfiError {
    /// A pointer argument was NULL.
    #[error("`{0}` is NULL")]
    Null(&'static str),
    /// A string argument was not UTF-8.
    #[error("`{name}` is not UTF-8")]
    NotUtf8 {
        name: &'static str,
        #[source]
        source: std::str::Utf8Error,
    },
    /// The library failed (or was cancelled).
    #[error(transparent)]
    Client(#[from] wavecast_client::Error),
}

impl FfiError {
    pub(crate) fn status(&self) -> WavecastStatus {
        match self {
            Self::Null(_) | Self::NotUtf8 { .. } => WavecastStatus::InvalidArgument,
            Self::Client(error) if error.is_cancelled() => WavecastStatus::Cancelled,
            Self::Client(wavecast_client::Error::Store(
                wavecast_client::StoreError::NotInitialized { .. },
            )) => WavecastStatus::NotInitialized,
            Self::Client(_) => WavecastStatus::Error,
        }
    }

    /// The message as `wavecast-update` prints it, without its `error: ` prefix:
    /// the error, one `  caused by: …` line per source, then the library's hint.
    pub(crate) fn message(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        // `Client` is transparent: its own source is the first cause.
        while let Some(cause) = source {
            message.push_str("\n  caused by: ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        if let Self::Client(error) = self
            && let Some(hint) = error.hint()
        {
            message.push_str("\nhint: ");
            message.push_str(&hint);
        }
        message
    }
}
