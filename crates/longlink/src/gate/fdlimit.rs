//! The open-file limit against `max_conn_num`: each connection is a descriptor, so a soft
//! `RLIMIT_NOFILE` below `max_conn_num` makes accepts fail (`EMFILE`) long before the gate is
//! full. At bind the gate raises the soft limit to the hard one (as Go does since 1.19) and
//! warns if that is still too low.

/// Descriptors besides the connections: listeners, the admin listeners and their
/// connections, NATS, log files.
pub(crate) const MARGIN: u64 = 64;

/// Raises the soft open-file limit (up to the hard one) if it is below `max_conn_num` +
/// [`MARGIN`]; warns, naming both numbers and the fix, if it stays below.
pub(crate) fn check(max_conn_num: usize) {
    let need = (max_conn_num as u64).saturating_add(MARGIN);
    let (soft, hard) = match raise(need) {
        Ok(limits) => limits,
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the open-file limit");
            return;
        }
    };
    if soft < need {
        tracing::warn!(
            soft,
            hard,
            max_conn_num,
            need,
            "open files limit (RLIMIT_NOFILE) {soft} (hard {hard}) is below max_conn_num \
             {max_conn_num} + {MARGIN}: accepts will fail with EMFILE before the gate is full; \
             raise it (ulimit -n {need}, or LimitNOFILE={need} in the systemd unit) or lower \
             max_conn_num"
        );
    } else {
        tracing::debug!(soft, hard, need, "open-file limit suffices");
    }
}

/// The soft and hard limits, the soft one first raised to the hard one if below `need`.
fn raise(need: u64) -> std::io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // `rlim_t` is u64 on Linux, but not everywhere.
    #[allow(clippy::unnecessary_cast)]
    let (soft, hard) = (limit.rlim_cur as u64, limit.rlim_max as u64);
    if soft >= need || soft >= hard {
        return Ok((soft, hard));
    }
    let raised = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit only reads the struct it is given, which lives for the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        let e = std::io::Error::last_os_error();
        tracing::debug!(error = %e, soft, hard, "cannot raise the open-file limit");
        return Ok((soft, hard));
    }
    tracing::info!(
        from = soft,
        to = hard,
        "raised the open-file limit to the hard limit"
    );
    Ok((hard, hard))
}
