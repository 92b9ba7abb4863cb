/**
 * A device as the engine runs it ({@link org.jvhost.engine.device.DeviceRuntime}): which worker serves
 * each queue group, the guard around every callback into the device (a throw or a guest-memory fault
 * fails that device alone), its per-queue statistics, its fd watches and its pending config-change
 * notice. It outlives connections: a front-end that reconnects finds the same runtime.
 */
package org.jvhost.engine.device;
