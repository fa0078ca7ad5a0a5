"""Multi-node runs: one recorder per node, one session per node, one group per run.

``wattui record --group ID`` stores the group id in each node's session; all nodes write
into one shared store. The group's reference (``group:<ID>``) is
:class:`wattui.model.group.GroupRef`; here:

- :mod:`wattui.groups.node_env`: which node this is and which group a recorder joins, from
  Slurm's or torchrun's environment (:func:`~wattui.groups.node_env.default_group`).
- :mod:`wattui.groups.refs`: a group's sessions in a store.
- :mod:`wattui.groups.merge`: the nodes' records merged into one, and nodes' power and
  energy summed over time.

Nothing is imported here, so a recorder that needs only its host name loads no more.
"""
