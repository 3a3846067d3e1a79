"""The control side of the loop, ROS-free: the safety layer and the planner's runtime around MPC."""

from mbrl_ros.control.safety import CommandLimits, FilteredCommand, SafetyFilter
from mbrl_ros.control.worker import Plan, PlanFunction, PlannerWorker

__all__ = ["CommandLimits", "FilteredCommand", "Plan", "PlanFunction", "PlannerWorker", "SafetyFilter"]
