"""Demo data: the calibrated 2019 history (:mod:`.history`) and the live simulator (:mod:`.live`)."""
