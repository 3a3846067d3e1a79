"""``mbrl-ros task``: what a task's vectors hold and where a ROS node finds them; optionally a frame or episodes.

Example: ``mbrl-ros task shadow_hand_cube --render hand.png --episodes 2``.
"""

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "task", help="describe a task: state layout, actuators, topics (and render a frame, run random episodes)",
        description="Describes a task (a registered name or package.module:Class): its state layout and where each "
        "part comes from over ROS, its actuators in command order, control period and episode length.",
    )
    parser.add_argument("task", help="task name (e.g. shadow_hand_cube) or package.module:Class")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=JSON",
                        help="task option, e.g. --option episode_length=50 (repeatable)")
    parser.add_argument("--bridge", default="mujoco_bridge", help="the bridge node's name, for the topic names")
    parser.add_argument("--render", metavar="PNG", help="write the first frame of an episode from the task's camera")
    parser.add_argument("--size", type=int, default=256, help="frame width and height for --render (pixels)")
    parser.add_argument("--episodes", type=int, default=0, help="run this many episodes of uniform random actions")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the episodes")
    parser.set_defaults(func=run)
    return parser


def _options(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs:
        key, separator, text = pair.partition("=")
        if not separator or not key:
            raise ValueError(f"--option wants KEY=JSON, got {pair!r}")
        try:
            options[key] = json.loads(text)
        except json.JSONDecodeError:
            options[key] = text
    return options


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from mbrl_ros.nodes.state_assembly import JOINT_STATES_TOPIC, pose_topic, twist_topic
    from mbrl_ros.sim.episode import TaskSimulation
    from mbrl_ros.tasks import BodyPose, BodyTwist, JointPositions, make_task

    try:
        task = make_task(args.task, **_options(args.option))
    except (ValueError, FileNotFoundError) as error:
        print(f"mbrl-ros task: {error}", file=sys.stderr)
        return 2
    low, high = task.action_bounds
    print(f"task {task.name}: dt {task.dt} s, {task.episode_length} steps per episode, "
          f"success held for {task.success_hold_steps} step(s)")
    print(f"state ({task.state_dim}):")
    for field in task.layout.fields:
        part = task.layout[field.name]
        if isinstance(field, BodyPose | BodyTwist):
            topic = (pose_topic if isinstance(field, BodyPose) else twist_topic)(field.body, args.bridge)
            source = f"{topic} {', '.join(field.components)}"
        else:
            kind = "position" if isinstance(field, JointPositions) else "velocity"
            source = f"{JOINT_STATES_TOPIC} {kind} of {', '.join(field.joints)}"
        print(f"  [{part.start}:{part.stop}] {field.name}: {source}")
    simulation = TaskSimulation(task, seed=args.seed)
    sim = simulation.sim
    print(f"actions ({task.action_dim}), the order of <controller>/commands:")
    for index, name in enumerate(task.actuator_names):
        kind = "position" if sim.position_actuators[index] else "force/torque"
        joint = sim.actuator_joints[index] or "(no single joint)"
        print(f"  [{index}] {name}: {kind} on {joint}, [{low[index]:.4g}, {high[index]:.4g}]")
    if args.render:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        plt.imsave(args.render, simulation.render(args.size, args.size))
        print(f"wrote {args.render}")
    rng = np.random.default_rng(args.seed)
    for episode in tqdm(range(args.episodes), desc="random episodes", disable=args.episodes == 0):
        if episode:
            simulation.reset()
        while not simulation.done:
            simulation.step(rng.uniform(low, high))
        summary = simulation.summary()
        tqdm.write(f"episode {summary.episode} (seed {summary.seed}): return {summary.episode_return:.4g}, "
                   f"{summary.length} steps, success {summary.success}")
    simulation.close()
    return 0
