        # BEGIN TASK autograd.toposort
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                if node._ctx is not None:
                    for parent in node._ctx.parents:
                        if isinstance(parent, Tensor) and parent.requires_grad:
                            stack.append((parent, False))
        return order[::-1]
        # END TASK
