"""3DG-STFM matcher-to-matcher distillation: a frozen teacher matcher trains a student matcher.

* ``matcher_distillation_config``: ``MatcherDistillationConfig`` (teacher, lambda_0..3, T, extra input)
  and the YAML loader of a distillation training config;
* ``frozen_teacher_matcher``: the teacher, loaded from any DistillMatch checkpoint, frozen;
* ``privileged_input``: the training-time extra channel (depth / aligned thermal) of a teacher;
* ``student_objective``: lambda_0 L_c + lambda_1 L_f + lambda_2 L_MQD + lambda_3 L_att;
* ``matcher_distillation_trainer``: the DistillMatch trainer with the teacher in its loss;
* ``distillation_command``: ``training/train_matcher_distillation.py``.

The losses live with the others: ``losses/mutual_query_divergence.py``, ``losses/attentive_loss.py``.
See docs/distillation.md.
"""
