    # BEGIN TASK unet.weight_map
    labels = [label for label in np.unique(instances) if label != 0]
    distances = [ndimage.distance_transform_edt(instances != label) for label in labels]
    distances += [np.full(instances.shape, np.inf)] * 2  # fewer than two objects: inf
    ordered = np.sort(np.stack(distances), axis=0)
    return ordered[0], ordered[1]
    # END TASK

    # BEGIN TASK unet.weight_map
    w = wc[target]
    if w0 > 0:
        d1, d2 = _two_nearest_distances(separated)
        border = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
        w = w + np.where(target == 0, border, 0.0)
    # END TASK
