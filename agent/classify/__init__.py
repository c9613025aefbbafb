"""The streaming early-media classifier: the distilled student and the per-second rule.

:mod:`agent.classify.model` holds :class:`~agent.classify.model.StudentModel`;
:mod:`agent.classify.stream` the :class:`~agent.classify.stream.StreamingClassifier`;
:mod:`agent.classify.rule` its streaming rule and configuration. They are not re-exported
here, so that the ``classify`` command's parser can be built without importing LightGBM.
"""
