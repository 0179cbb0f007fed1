"""Code that runs inside the candidate process and its fork server.

Everything in this package imports only the standard library, numpy and greenlet, never
``tts_gym``: the fork server (:mod:`.zygote`) loads these files by path into a freshly executed
interpreter that holds no store, no gold answer and none of the caller's environment. The
trusted side (the broker, :mod:`tts_gym.sandbox.broker`) imports the same :mod:`.wire` module,
so both ends of the pipe share one definition of the format.
"""
