    # BEGIN TASK gradcheck.central_difference
    flat = t.data.reshape(-1)
    n_out = _value(fn, inputs).size
    jacobian = np.zeros((n_out, t.size))
    for j in range(t.size):
        original = flat[j].copy()
        flat[j] = original + eps
        plus = backend.to_numpy(_value(fn, inputs)).reshape(-1)
        flat[j] = original - eps
        minus = backend.to_numpy(_value(fn, inputs)).reshape(-1)
        flat[j] = original
        jacobian[:, j] = (plus - minus) / (2 * eps)
    return jacobian
    # END TASK
