"""Moving early media from the pjsua2 workers to analysis: WAV taps on tmpfs and their reader."""
